// Pieces shared by sinklab's self-contained HTML pages (inspect report, litm):
// the base style, the JS element builders, the per-section renderer that marks
// each section ok or error, and the embedding of the page's JSON data.
#pragma once

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

}  // namespace sinklab::html
