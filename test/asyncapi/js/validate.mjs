#!/usr/bin/env node
// Parses an AsyncAPI document with @asyncapi/parser, the Avro and
// Protobuf schema parsers registered so every payload is parsed too.
// Run by test/asyncapi (go test):
//
//   node validate.mjs <document.yaml|json>
//
// Prints {"valid": bool, "diagnostics": [{severity, code, message, path}],
// "channels": [address...], "formats": {address: payload schemaFormat},
// "servers": [name...], "security": [scheme type...]}. Severity 0 is an
// error (the parser's DiagnosticSeverity.Error).

import { readFile } from 'node:fs/promises'
import { Parser } from '@asyncapi/parser'
import { AvroSchemaParser } from '@asyncapi/avro-schema-parser'
import { ProtoBuffSchemaParser } from '@asyncapi/protobuf-schema-parser'

function die (msg) {
  process.stderr.write(`validate: ${msg}\n`)
  process.exit(1)
}

const path = process.argv[2]
if (!path) die('usage: node validate.mjs <document>')

const parser = new Parser()
parser.registerSchemaParser(AvroSchemaParser())
parser.registerSchemaParser(ProtoBuffSchemaParser())

const text = await readFile(path, 'utf8')
const { document, diagnostics } = await parser.parse(text, { source: path })
const out = {
  valid: document !== undefined,
  diagnostics: diagnostics.map((d) => ({ severity: d.severity, code: d.code, message: d.message, path: d.path })),
  channels: [],
  formats: {},
  servers: [],
  security: []
}
if (document) {
  for (const ch of document.channels().all()) {
    out.channels.push(ch.address())
    for (const m of ch.messages().all()) {
      if (m.hasPayload()) out.formats[ch.address()] = m.schemaFormat()
    }
  }
  out.channels.sort()
  for (const s of document.servers().all()) {
    out.servers.push(s.id())
    for (const req of s.security()) {
      for (const r of req.all()) {
        const t = r.scheme().type()
        if (!out.security.includes(t)) out.security.push(t)
      }
    }
  }
}
process.stdout.write(JSON.stringify(out) + '\n')
