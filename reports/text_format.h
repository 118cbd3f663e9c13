// Small text helpers every table and report printer shares.
#pragma once

#include <cstdio>
#include <string>

namespace cclab {

/// printf into a string, whatever its length.
template <typename... Values>
std::string format_text(const char* pattern, Values... values) {
  const int length = std::snprintf(nullptr, 0, pattern, values...);
  if (length <= 0) return std::string();
  std::string text(size_t(length) + 1, '\0');
  std::snprintf(text.data(), text.size(), pattern, values...);
  text.pop_back();
  return text;
}

/// `text` safe inside XML and HTML elements and attribute values.
inline std::string xml_escaped(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '&')
      out += "&amp;";
    else if (c == '<')
      out += "&lt;";
    else if (c == '>')
      out += "&gt;";
    else if (c == '"')
      out += "&quot;";
    else
      out += c;
  }
  return out;
}

}  // namespace cclab
