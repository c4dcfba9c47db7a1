// Cleaning of user-interface messages from translation catalogs into plain sentence pairs.
// Torch-free.
#pragma once

#include <cstddef>
#include <string>

namespace septa::nn::mt {

// The message as plain text, "" when nothing worth translating is left. In order:
//  - markup: tags "<b>", "</a>", "<span foo='x'>" removed; entities &lt; &gt; &amp; &quot; &apos;
//    &nbsp; and &#NN; decoded;
//  - accelerators: "(_F)" / "(&F)" after a CJK label removed; "_" "&" "~" before a letter or digit
//    removed ("&&" is a literal "&");
//  - format specifiers: printf ("%s", "%-5.2f", "%1$s", "%lu"), Python ("%(name)s"), Qt/KDE ("%1")
//    and brace ("{0}", "{name}", "{}") removed; "%%" becomes "%";
//  - newlines, tabs and runs of spaces become one space; leading and trailing spaces go.
// Empty when no letter is left (ASCII letters or any non-ASCII character count) or when the
// result is longer than `max_bytes`.
std::string clean_message(const std::string& text, std::size_t max_bytes = 200);

}  // namespace septa::nn::mt
