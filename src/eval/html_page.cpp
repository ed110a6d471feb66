#include "html_page.h"

namespace sinklab::html {

const char* const kBaseStyle = R"CSS(body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; margin: 0; background: #f4f5f7; color: #1d2330; }
main { max-width: 1180px; margin: 0 auto; padding: 18px 22px 40px; }
h1 { font-size: 24px; margin: 4px 0 10px; }
h2 { font-size: 18px; margin: 0 0 6px; }
section, header.card { background: #fff; border: 1px solid #dde1e8; border-radius: 8px; padding: 14px 18px; margin: 14px 0; }
.note { color: #5b6475; font-size: 13px; margin: 2px 0 8px; }
.err { color: #a40000; background: #ffecec; border: 1px solid #f3b5b5; border-radius: 6px; padding: 8px 12px; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border-bottom: 1px solid #e6e9ef; padding: 3px 9px; text-align: right; }
th { background: #f0f2f6; } td.l, th.l { text-align: left; }
svg text { font-family: system-ui, "DejaVu Sans", sans-serif; }
)CSS";

const char* const kDomHelpers = R"JS(const NS = "http://www.w3.org/2000/svg";
function h(tag, attrs, parent, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  if (parent) parent.appendChild(e);
  return e;
}
function s(tag, attrs, parent, text) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  if (parent) parent.appendChild(e);
  return e;
}
)JS";

const char* const kSectionRunner = R"JS(function renderSections(sections, bodyOf) {
  const done = [];
  for (const [id, fn] of sections) {
    const root = document.getElementById(id);
    const body = bodyOf(id, root);
    try {
      fn(body);
      root.setAttribute("data-rendered", "ok");
      done.push(id);
    } catch (e) {
      root.setAttribute("data-rendered", "error");
      h("p", {class: "err"}, body, "This section could not be drawn: " + e);
      console.error("sinklab-report-error: section " + id + ": " + e);
    }
  }
  document.body.setAttribute("data-sections-rendered", done.join(" "));
  // Layout self-check: an axis title (class axis-title) that overlaps a tick
  // label (class tick) of its chart is counted in body[data-text-overlaps].
  let overlaps = 0;
  for (const svg of document.querySelectorAll("svg")) {
    const ticks = [...svg.querySelectorAll("text.tick")].map((t) => t.getBoundingClientRect());
    for (const title of svg.querySelectorAll("text.axis-title")) {
      const a = title.getBoundingClientRect();
      for (const b of ticks)
        if (a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom) overlaps++;
    }
  }
  document.body.setAttribute("data-text-overlaps", String(overlaps));
  return done.length === sections.length;
}
)JS";

void append_json_data(std::string& page, const nlohmann::json& data) {
  const std::string text = data.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  page.reserve(page.size() + text.size());
  for (char ch : text) {
    if (ch == '<')
      page += "\\u003c";
    else
      page += ch;
  }
}

std::string assemble_page(const char* title, const char* rest, const nlohmann::json& data,
                          std::initializer_list<const char*> scripts) {
  std::string page =
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>";
  page += title;
  page += "</title>\n<style>\n";
  page += kBaseStyle;
  page += rest;
  append_json_data(page, data);
  page += "</script>\n<script>\n\"use strict\";\n";
  page += kDomHelpers;
  page += kSectionRunner;
  for (const char* s : scripts) page += s;
  return page;
}

}  // namespace sinklab::html
