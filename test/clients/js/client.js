#!/usr/bin/env node
// Drives kafkajs against a Runnel broker. Run by test/clients (go test).
// Every subcommand prints one JSON object per line on stdout; the Go test
// checks record contents, offsets and counts. kafkajs logs go to stderr.
//
//   produce  <bootstrap> <topic> <codec> <count> <prefix> <partitions>
//            idempotent producer, acks=all; record i goes to partition
//            i % partitions with key "<prefix>-k<i>", value "<prefix>-v<i>-" + 64 "x",
//            headers h-index=<i>, h-codec=<codec>; prints {key,partition,offset}.
//   consume  <bootstrap> <topic> <group> <max> <timeoutMs>
//            group consumer without auto commit; reads until max records
//            or the timeout, commits exactly what it read, disconnects;
//            prints {key,value,headers,partition,offset} per record.
//   admin    <bootstrap> <topic> <partitions>
//            create, list, describe (metadata), delete; one {step,...} per step.
//   codecs   prints the codecs this kafkajs installation can use.
'use strict'

const { Kafka, CompressionTypes, CompressionCodecs, logLevel } = require('kafkajs')

const codecNames = {
  none: CompressionTypes.None,
  gzip: CompressionTypes.GZIP,
  snappy: CompressionTypes.Snappy,
  lz4: CompressionTypes.LZ4,
  zstd: CompressionTypes.ZSTD,
}

// Registers the codec plugins: kafkajs ships only gzip. snappy and lz4 come
// from kafkajs-snappy and kafkajs-lz4. The published zstd plugin
// (@kafkajs/zstd) needs the native cppzst module, which no longer builds on
// current Node; zstd is provided by a small codec over @bokuweb/zstd-wasm.
async function registerCodecs () {
  const available = ['none', 'gzip']
  try {
    CompressionCodecs[CompressionTypes.Snappy] = require('kafkajs-snappy')
    available.push('snappy')
  } catch (e) {
    process.stderr.write(`snappy codec unavailable: ${e.message}\n`)
  }
  try {
    const LZ4Codec = require('kafkajs-lz4')
    CompressionCodecs[CompressionTypes.LZ4] = new LZ4Codec().codec
    available.push('lz4')
  } catch (e) {
    process.stderr.write(`lz4 codec unavailable: ${e.message}\n`)
  }
  try {
    const zstd = require('@bokuweb/zstd-wasm')
    await zstd.init()
    CompressionCodecs[CompressionTypes.ZSTD] = () => ({
      async compress (encoder) {
        return Buffer.from(zstd.compress(encoder.buffer, 3))
      },
      async decompress (buffer) {
        return Buffer.from(zstd.decompress(buffer))
      },
    })
    available.push('zstd')
  } catch (e) {
    process.stderr.write(`zstd codec unavailable: ${e.message}\n`)
  }
  return available
}

function emit (obj) {
  process.stdout.write(JSON.stringify(obj) + '\n')
}

function client (bootstrap) {
  return new Kafka({
    clientId: 'runnel-kafkajs-test',
    brokers: [bootstrap],
    logLevel: logLevel.WARN,
    logCreator: () => ({ namespace, level, label, log }) => {
      process.stderr.write(`[${label}] ${namespace}: ${log.message} ${JSON.stringify(log)}\n`)
    },
    retry: { retries: 5, initialRetryTime: 100 },
  })
}

function headersOf (h) {
  const out = []
  for (const k of Object.keys(h || {}).sort()) {
    const v = h[k]
    out.push([k, Buffer.isBuffer(v) ? v.toString('utf8') : String(v)])
  }
  return out
}

async function produce ([bootstrap, topic, codec, countS, prefix, partsS]) {
  if (!(codec in codecNames)) throw new Error(`unknown codec ${codec}`)
  const count = parseInt(countS, 10)
  const parts = parseInt(partsS, 10)
  if (!(count > 0) || !(parts > 0)) throw new Error('count and partitions must be positive')
  const producer = client(bootstrap).producer({ idempotent: true, maxInFlightRequests: 1 })
  await producer.connect()
  try {
    const messages = []
    for (let i = 0; i < count; i++) {
      messages.push({
        key: `${prefix}-k${i}`,
        value: `${prefix}-v${i}-${'x'.repeat(64)}`,
        partition: i % parts,
        headers: { 'h-index': String(i), 'h-codec': codec },
      })
    }
    const res = await producer.send({ topic, acks: -1, compression: codecNames[codec], messages })
    const base = {}
    for (const r of res) {
      if (r.errorCode !== 0) throw new Error(`partition ${r.partition}: error ${r.errorCode}`)
      base[r.partition] = BigInt(r.baseOffset)
    }
    const seen = {}
    for (const m of messages) {
      const n = seen[m.partition] || 0n
      seen[m.partition] = n + 1n
      emit({ key: m.key, partition: m.partition, offset: Number(base[m.partition] + n) })
    }
  } finally {
    await producer.disconnect()
  }
}

async function consume ([bootstrap, topic, group, maxS, timeoutS]) {
  const max = parseInt(maxS, 10)
  const timeout = parseInt(timeoutS, 10)
  const consumer = client(bootstrap).consumer({ groupId: group, sessionTimeout: 10000, heartbeatInterval: 500 })
  await consumer.connect()
  const next = {}
  let got = 0
  let finish
  const finished = new Promise((resolve) => { finish = resolve })
  const timer = setTimeout(() => finish(), timeout)
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        if (got >= max) return
        emit({
          key: message.key === null ? null : message.key.toString('utf8'),
          value: message.value === null ? null : message.value.toString('utf8'),
          headers: headersOf(message.headers),
          partition,
          offset: Number(message.offset),
        })
        next[partition] = (BigInt(message.offset) + 1n).toString()
        got++
        if (got >= max) finish()
      },
    })
    await finished
    consumer.pause([{ topic }])
    const offsets = Object.keys(next).map((p) => ({ topic, partition: Number(p), offset: next[p] }))
    if (offsets.length > 0) await consumer.commitOffsets(offsets)
  } finally {
    clearTimeout(timer)
    await consumer.disconnect()
  }
}

async function admin ([bootstrap, topic, partsS]) {
  const parts = parseInt(partsS, 10)
  const adm = client(bootstrap).admin()
  await adm.connect()
  try {
    const created = await adm.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: parts, replicationFactor: 1 }] })
    emit({ step: 'create', created })
    const again = await adm.createTopics({ topics: [{ topic, numPartitions: 1 }] })
    emit({ step: 'create-again', created: again })
    const names = await adm.listTopics()
    emit({ step: 'list', present: names.includes(topic) })
    const md = await adm.fetchTopicMetadata({ topics: [topic] })
    const t = md.topics.find((x) => x.name === topic)
    emit({
      step: 'describe',
      partitions: t.partitions.map((p) => p.partitionId).sort((a, b) => a - b),
      errors: t.partitions.map((p) => p.partitionErrorCode).filter((c) => c !== 0),
    })
    const offsets = await adm.fetchTopicOffsets(topic)
    emit({ step: 'offsets', offsets: offsets.map((o) => ({ partition: o.partition, low: o.low, high: o.high })).sort((a, b) => a.partition - b.partition) })
    await adm.deleteTopics({ topics: [topic] })
    const after = await adm.listTopics()
    emit({ step: 'delete', present: after.includes(topic) })
  } finally {
    await adm.disconnect()
  }
}

async function main () {
  const [cmd, ...args] = process.argv.slice(2)
  const available = await registerCodecs()
  switch (cmd) {
    case 'codecs': emit({ codecs: available }); break
    case 'produce': await produce(args); break
    case 'consume': await consume(args); break
    case 'admin': await admin(args); break
    default: throw new Error(`unknown command ${cmd}`)
  }
}

main().catch((e) => {
  process.stderr.write(`client.js: ${e.stack || e}\n`)
  process.exit(1)
})
