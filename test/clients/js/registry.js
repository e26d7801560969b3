#!/usr/bin/env node
// Drives @kafkajs/confluent-schema-registry and kafkajs against a Runnel
// broker and its schema registry. Run by test/clients (go test):
//
//   node js/registry.js <bootstrap> <registryHostPort> <topic> <group>
//
// The test data comes as one JSON object on stdin:
//
//   {"cases": [{"format": "AVRO"|"PROTOBUF"|"JSON", "subject": S,
//               "schema": text, "values": [v, ...]}, ...],
//    "evolve": {"subject": S, "compatible": text, "incompatible": text},
//    "missing": subject that does not exist}
//
// For each case it registers the schema under its subject (SchemaType from
// the package), encodes every value with registry.encode(id, value) and
// produces it to <topic> with key "<format>-<i>". A consumer in <group>
// reads them back and a second SchemaRegistry instance (empty cache, so it
// fetches each schema by id) decodes them with registry.decode(buffer).
// Then it asks getLatestSchemaId, getRegistryId and getRegistryIdBySchema,
// registers evolve.compatible (a new version) and evolve.incompatible (must
// fail), and looks up the missing subject (must fail).
//
// Every step prints one JSON object per line:
//   {step:"register", format, subject, id}
//   {step:"record", key, format, id, value}       id read from the wire bytes
//   {step:"latest", subject, id}                   getLatestSchemaId
//   {step:"by-version", subject, version, id}      getRegistryId
//   {step:"by-schema", subject, id}                getRegistryIdBySchema
//   {step:"evolve", subject, id, latest}
//   {step:"incompatible"|"missing", name, status, message}
// (the package's ResponseError carries the HTTP status and the message of
// the registry's error body, not its error_code).
//
// Two more modes check the package's Protobuf wire format against a topic
// with confluent.value.schema.validation=true (registry_protobuf_test.go):
//
//   node js/registry.js proto-produce <bootstrap> <registry> <topic>
//     stdin {"subject": S, "schema": text, "key": K, "value": v}: registers
//     the schema, encodes v with registry.encode, prints
//     {step:"encoded", id, hex} (the exact bytes of the record value), then
//     produces it with key K and prints {step:"produced", partition,
//     offset} or {step:"produce-error", name, type, code, message}
//     (type and code of the KafkaJSProtocolError inside kafkajs' wrapper).
//   node js/registry.js proto-consume <bootstrap> <registry> <topic> <group> <n>
//     consumes n records and decodes each with a fresh registry.decode,
//     printing {step:"decoded", key, value} or
//     {step:"decode-error", key, name, message}.
'use strict'

const { Kafka, logLevel } = require('kafkajs')
const { SchemaRegistry, SchemaType } = require('@kafkajs/confluent-schema-registry')

function emit (obj) {
  process.stdout.write(JSON.stringify(obj) + '\n')
}

const types = { AVRO: SchemaType.AVRO, PROTOBUF: SchemaType.PROTOBUF, JSON: SchemaType.JSON }

function registry (host) {
  return new SchemaRegistry({
    host: `http://${host}`,
    clientId: 'runnel-registry-test',
    retry: { retries: 0 },
  })
}

function kafka (bootstrap) {
  return new Kafka({
    clientId: 'runnel-registry-test',
    brokers: [bootstrap],
    logLevel: logLevel.WARN,
    logCreator: () => ({ namespace, label, log }) => {
      process.stderr.write(`[${label}] ${namespace}: ${log.message} ${JSON.stringify(log)}\n`)
    },
    retry: { retries: 5, initialRetryTime: 100 },
  })
}

async function readStdin () {
  const chunks = []
  for await (const c of process.stdin) chunks.push(c)
  return JSON.parse(Buffer.concat(chunks).toString('utf8'))
}

// expectFailure runs fn, which must throw, and prints what the error says.
async function expectFailure (step, fn) {
  try {
    const res = await fn()
    throw new Error(`${step}: expected an error, got ${JSON.stringify(res)}`)
  } catch (e) {
    if (e.message && e.message.startsWith(`${step}: expected an error`)) throw e
    emit({
      step,
      name: e.name,
      status: e.status === undefined ? null : e.status,
      message: e.message,
    })
  }
}

async function consumeAll (bootstrap, topic, group, want, timeoutMs) {
  const consumer = kafka(bootstrap).consumer({ groupId: group, sessionTimeout: 10000, heartbeatInterval: 500, maxWaitTimeInMs: 500 })
  await consumer.connect()
  const got = []
  let finish
  const finished = new Promise((resolve) => { finish = resolve })
  const timer = setTimeout(() => finish(), timeoutMs)
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    await consumer.run({
      eachMessage: async ({ message }) => {
        got.push(message)
        if (got.length >= want) finish()
      },
    })
    await finished
  } finally {
    clearTimeout(timer)
    await consumer.disconnect()
  }
  if (got.length !== want) throw new Error(`consumed ${got.length} records, want ${want}`)
  return got
}

async function main () {
  const [bootstrap, host, topic, group] = process.argv.slice(2)
  if (!bootstrap || !host || !topic || !group) throw new Error('usage: registry.js <bootstrap> <registry> <topic> <group>')
  const input = await readStdin()
  const reg = registry(host)

  const messages = []
  for (const c of input.cases) {
    const type = types[c.format]
    if (!type) throw new Error(`unknown format ${c.format}`)
    const { id } = await reg.register({ type, schema: c.schema }, { subject: c.subject })
    emit({ step: 'register', format: c.format, subject: c.subject, id })
    for (let i = 0; i < c.values.length; i++) {
      messages.push({ key: `${c.format}-${i}`, value: await reg.encode(id, c.values[i]) })
    }
  }

  const producer = kafka(bootstrap).producer({ idempotent: true, maxInFlightRequests: 1 })
  await producer.connect()
  try {
    await producer.send({ topic, acks: -1, messages })
  } finally {
    await producer.disconnect()
  }

  // A fresh instance has no cached schemas: decode must fetch them by id.
  const reader = registry(host)
  for (const m of await consumeAll(bootstrap, topic, group, messages.length, 30000)) {
    const key = m.key.toString('utf8')
    const value = await reader.decode(m.value)
    emit({ step: 'record', key, format: key.split('-')[0], id: m.value.readInt32BE(1), value })
  }

  for (const c of input.cases) {
    emit({ step: 'latest', subject: c.subject, id: await reader.getLatestSchemaId(c.subject) })
    emit({ step: 'by-version', subject: c.subject, version: 1, id: await reader.getRegistryId(c.subject, 1) })
    emit({ step: 'by-version', subject: c.subject, version: 'latest', id: await reader.getRegistryId(c.subject, 'latest') })
  }
  const avro = input.cases.find((c) => c.format === 'AVRO')
  emit({ step: 'by-schema', subject: avro.subject, id: await reader.getRegistryIdBySchema(avro.subject, { type: SchemaType.AVRO, schema: avro.schema }) })

  const ev = input.evolve
  const { id } = await reg.register({ type: SchemaType.AVRO, schema: ev.compatible }, { subject: ev.subject })
  emit({ step: 'evolve', subject: ev.subject, id, latest: await registry(host).getLatestSchemaId(ev.subject) })
  await expectFailure('incompatible', () => reg.register({ type: SchemaType.AVRO, schema: ev.incompatible }, { subject: ev.subject }))
  await expectFailure('missing', () => registry(host).getLatestSchemaId(input.missing))
}

// protocolError finds the broker's error inside kafkajs' wrappers.
function protocolError (e) {
  for (let x = e; x; x = x.cause || x.originalError) {
    if (x.type !== undefined && x.code !== undefined) return x
    if (x.cause === x) break
  }
  return {}
}

async function protoProduce () {
  const [bootstrap, host, topic] = process.argv.slice(3)
  if (!bootstrap || !host || !topic) throw new Error('usage: registry.js proto-produce <bootstrap> <registry> <topic>')
  const input = await readStdin()
  const reg = registry(host)
  const { id } = await reg.register({ type: SchemaType.PROTOBUF, schema: input.schema }, { subject: input.subject })
  const value = await reg.encode(id, input.value)
  emit({ step: 'encoded', id, hex: value.toString('hex') })
  const producer = kafka(bootstrap).producer({ retry: { retries: 0 } })
  await producer.connect()
  try {
    const res = await producer.send({ topic, acks: -1, messages: [{ key: input.key, value }] })
    emit({ step: 'produced', partition: res[0].partition, offset: Number(res[0].baseOffset) })
  } catch (e) {
    const pe = protocolError(e)
    emit({ step: 'produce-error', name: e.name, type: pe.type || null, code: pe.code === undefined ? null : pe.code, message: e.message })
  } finally {
    await producer.disconnect()
  }
}

async function protoConsume () {
  const [bootstrap, host, topic, group, n] = process.argv.slice(3)
  if (!bootstrap || !host || !topic || !group || !n) throw new Error('usage: registry.js proto-consume <bootstrap> <registry> <topic> <group> <n>')
  const reader = registry(host)
  for (const m of await consumeAll(bootstrap, topic, group, Number(n), 30000)) {
    const key = m.key.toString('utf8')
    try {
      emit({ step: 'decoded', key, value: await reader.decode(m.value) })
    } catch (e) {
      emit({ step: 'decode-error', key, name: e.name, message: e.message })
    }
  }
}

const modes = { 'proto-produce': protoProduce, 'proto-consume': protoConsume }

;(modes[process.argv[2]] || main)().catch((e) => {
  process.stderr.write(`registry.js: ${e.stack || e}\n`)
  process.exit(1)
})
