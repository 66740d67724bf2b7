#!/usr/bin/env node
// An OpenAPI document as Postman imports it: the collection openapi-to-postmanv2 (the converter behind Postman's
// own import) makes of it, printed as JSON. Usage: node scripts/postman_collection.js openapi.json > collection.json
// The document can be the served one: curl -s http://127.0.0.1:5000/api/v1/openapi.json > openapi.json
'use strict';

const fs = require('fs');
const Converter = require('openapi-to-postmanv2');

const source = process.argv[2];
if (!source) {
  console.error('usage: node scripts/postman_collection.js OPENAPI_JSON_FILE');
  process.exit(2);
}

Converter.convert(
  { type: 'string', data: fs.readFileSync(source, 'utf8') },
  // Postman's import defaults, with the folder per tag that Swagger UI also shows.
  { folderStrategy: 'Tags', requestParametersResolution: 'Schema', enableOptionalParameters: true },
  (error, result) => {
    if (error || !result.result) {
      console.error('conversion failed:', error ? error.message : result.reason);
      process.exit(1);
    }
    process.stdout.write(JSON.stringify(result.output[0].data));
  },
);
