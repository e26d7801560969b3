#!/usr/bin/env node
// Produces records encoded by @kafkajs/confluent-schema-registry (Confluent
// wire format: magic byte, schema id, then the Avro binary or the JSON
// text) with kafkajs. Run by test/tableflow (go test):
//
//   node produce.mjs <bootstrap> <registryHostPort> <topic> AVRO|JSON
//
// stdin is one JSON object {"schema": text, "records": [{"key": K,
// "timestamp": ms, "headers": {name: value}|null, "value": v}, ...]}.
// The schema is registered under <topic>-value (TopicNameStrategy); every
// value is encoded with registry.encode(id, value) and produced with its
// key, timestamp and headers by an idempotent producer, acks=all. JSON has
// no bytes, so an object {"$hex": "..."} anywhere in a value stands for
// those bytes (an Avro decimal's two's-complement unscaled value).
// Prints {"id": schema id, "produced": n}.

import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const { Kafka, logLevel } = require('kafkajs')
const { SchemaRegistry, SchemaType } = require('@kafkajs/confluent-schema-registry')

function die (msg) {
  process.stderr.write(`produce: ${msg}\n`)
  process.exit(1)
}

function bytes (v) {
  if (Array.isArray(v)) return v.map(bytes)
  if (v === null || typeof v !== 'object') return v
  const keys = Object.keys(v)
  if (keys.length === 1 && keys[0] === '$hex') return Buffer.from(v.$hex, 'hex')
  return Object.fromEntries(keys.map((k) => [k, bytes(v[k])]))
}

async function readStdin () {
  const chunks = []
  for await (const c of process.stdin) chunks.push(c)
  return JSON.parse(Buffer.concat(chunks).toString('utf8'))
}

async function main () {
  const [bootstrap, host, topic, format] = process.argv.slice(2)
  const type = { AVRO: SchemaType.AVRO, JSON: SchemaType.JSON }[format]
  if (!bootstrap || !host || !topic || !type) die('usage: produce.mjs <bootstrap> <registry> <topic> AVRO|JSON')
  const input = await readStdin()
  const registry = new SchemaRegistry({ host: `http://${host}`, clientId: 'runnel-tableflow-test', retry: { retries: 0 } })
  const { id } = await registry.register({ type, schema: input.schema }, { subject: `${topic}-value` })

  const messages = []
  for (const r of input.records) {
    const m = { key: r.key, value: await registry.encode(id, bytes(r.value)), timestamp: String(r.timestamp) }
    if (r.headers) m.headers = r.headers
    messages.push(m)
  }
  const kafka = new Kafka({
    clientId: 'runnel-tableflow-test',
    brokers: [bootstrap],
    logLevel: logLevel.WARN,
    logCreator: () => ({ namespace, label, log }) => {
      process.stderr.write(`[${label}] ${namespace}: ${log.message}\n`)
    },
    retry: { retries: 5, initialRetryTime: 100 },
  })
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
  await producer.connect()
  try {
    await producer.send({ topic, acks: -1, messages })
  } finally {
    await producer.disconnect()
  }
  process.stdout.write(JSON.stringify({ id, produced: messages.length }) + '\n')
}

main().catch((e) => die(e.stack || String(e)))
