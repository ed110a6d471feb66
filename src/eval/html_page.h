// Pieces shared by sinklab's self-contained HTML pages (inspect report, litm):
// the base style, the JS element builders, the per-section renderer that marks
// each section ok or error, and the embedding of the page's JSON data.
#pragma once

#include <initializer_list>
#include <string>

#include <nlohmann/json.hpp>

namespace sinklab::html {

// CSS rules every page starts from: layout, cards, notes, errors, tables.
extern const char* const kBaseStyle;
// JS: NS (the SVG namespace), h(tag, attrs, parent, text) and s(...) build HTML and SVG elements.
extern const char* const kDomHelpers;
// JS: renderSections([[id, fn], ...], bodyOf) calls fn(bodyOf(id, element)) per section, marks the
// element data-rendered="ok" or "error" (with a visible message and a console error), sets
// body[data-sections-rendered] and returns true when every section was drawn.
extern const char* const kSectionRunner;
// Appends `data` as JSON text with '<' escaped, so "</script>" and "<!--" cannot end the block.
void append_json_data(std::string& page, const nlohmann::json& data);
// A whole page: the <head> with `title`, kBaseStyle, `rest` (the page's CSS and body,
// ending with the opening tag of the JSON <script> block), the data, then a script with the shared
// helpers followed by the page's own `scripts` (which close the script and the page).
std::string assemble_page(const char* title, const char* rest, const nlohmann::json& data,
                          std::initializer_list<const char*> scripts);

}  // namespace sinklab::html
