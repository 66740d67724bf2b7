// Parse an AsyncAPI document with the official parser (@asyncapi/parser, from npm) and print its diagnostics as
// JSON lines; exit 1 when it cannot be parsed. Used by tests/test_asyncapi.py.
import { readFileSync } from "node:fs";
import { Parser } from "@asyncapi/parser";

const { document, diagnostics } = await new Parser().parse(readFileSync(process.argv[2], "utf8"));
for (const diagnostic of diagnostics) {
  console.log(JSON.stringify({ severity: diagnostic.severity, code: diagnostic.code, message: diagnostic.message,
                               path: diagnostic.path }));
}
process.exit(document ? 0 : 1);
