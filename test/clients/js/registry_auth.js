#!/usr/bin/env node
// Drives @kafkajs/confluent-schema-registry against a Runnel schema
// registry served over HTTPS with HTTP Basic authentication. Run by
// test/clients (go test):
//
//   node js/registry_auth.js <registryURL> <caFile>
//
// <registryURL> is https://host:port; the client trusts the CA in <caFile>
// through an https.Agent. The test data comes as one JSON object on stdin:
//
//   {"admin": {"username", "password"}, "denied": {"username", "password"},
//    "writer": {"username", "password"}, "writerSubject": W,
//    "subject": S, "schema": Avro schema text, "value": v}
//
// As admin (a super user) it registers the schema under S, asks
// getLatestSchemaId, encodes v and decodes it with a second client (empty
// cache, so it fetches the schema by id). Then it asks getLatestSchemaId
// with a wrong password, without credentials, and as the denied user
// (authenticated, without ACLs). The writer (ACLs on W's topic only)
// registers the schema under W and is refused reading S. Every step
// prints one JSON object per line:
//   {step:"register", id}
//   {step:"latest", id}
//   {step:"decoded", value}
//   {step:"writer-register", id}
//   {step:"wrong-password"|"anonymous"|"denied"|"writer-denied", name, status, message}
'use strict'

const fs = require('fs')
const https = require('https')
const { SchemaRegistry, SchemaType } = require('@kafkajs/confluent-schema-registry')

function emit (obj) {
  process.stdout.write(JSON.stringify(obj) + '\n')
}

async function readStdin () {
  const chunks = []
  for await (const c of process.stdin) chunks.push(c)
  return JSON.parse(Buffer.concat(chunks).toString('utf8'))
}

async function expectFailure (step, fn) {
  try {
    const res = await fn()
    throw new Error(`${step}: expected an error, got ${JSON.stringify(res)}`)
  } catch (e) {
    if (e.message && e.message.startsWith(`${step}: expected an error`)) throw e
    emit({ step, name: e.name, status: e.status === undefined ? null : e.status, message: e.message })
  }
}

async function main () {
  const [url, caFile] = process.argv.slice(2)
  if (!url || !caFile) throw new Error('usage: registry_auth.js <registryURL> <caFile>')
  const input = await readStdin()
  const agent = new https.Agent({ ca: fs.readFileSync(caFile), keepAlive: false })
  const registry = (auth) => new SchemaRegistry({
    host: url,
    auth,
    agent,
    clientId: 'runnel-registry-auth-test',
    retry: { retries: 0 },
  })

  const admin = registry(input.admin)
  const { id } = await admin.register({ type: SchemaType.AVRO, schema: input.schema }, { subject: input.subject })
  emit({ step: 'register', id })
  emit({ step: 'latest', id: await admin.getLatestSchemaId(input.subject) })
  const encoded = await admin.encode(id, input.value)
  emit({ step: 'decoded', value: await registry(input.admin).decode(encoded) })

  await expectFailure('wrong-password', () =>
    registry({ username: input.admin.username, password: input.admin.password + 'x' }).getLatestSchemaId(input.subject))
  await expectFailure('anonymous', () => registry(undefined).getLatestSchemaId(input.subject))
  await expectFailure('denied', () => registry(input.denied).getLatestSchemaId(input.subject))

  const writer = registry(input.writer)
  const written = await writer.register({ type: SchemaType.AVRO, schema: input.schema }, { subject: input.writerSubject })
  emit({ step: 'writer-register', id: written.id })
  await expectFailure('writer-denied', () => writer.getLatestSchemaId(input.subject))
}

main().catch((e) => {
  process.stderr.write(`${e.stack || e}\n`)
  process.exit(1)
})
