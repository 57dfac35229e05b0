# Writes a C++ source defining `std::string_view <FUNCTION>()` in namespace
# convserve::server that returns the contents of INPUT as a raw string literal.
#   cmake -DINPUT=page.html -DOUTPUT=page.cc -DFUNCTION=PageHtml -DHEADER=server/page.h
#         -P embed_text.cmake
file(READ "${INPUT}" text)
set(delimiter "convserve_embed")
string(FIND "${text}" ")${delimiter}\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "${INPUT} contains )${delimiter}\", which would end the raw string")
endif()
file(WRITE "${OUTPUT}"
  "// Generated from ${INPUT} by embed_text.cmake; do not edit.\n"
  "#include \"${HEADER}\"\n\n"
  "namespace convserve::server {\n\n"
  "std::string_view ${FUNCTION}() {\n"
  "  static constexpr char kText[] = R\"${delimiter}(${text})${delimiter}\";\n"
  "  return {kText, sizeof(kText) - 1};\n"
  "}\n\n"
  "}  // namespace convserve::server\n")
