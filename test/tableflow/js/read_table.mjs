#!/usr/bin/env node
// An Iceberg table reader that shares no code with Runnel: it finds a table
// through an Iceberg REST catalog, walks the metadata itself and lets DuckDB
// read the Parquet data files. Run by test/tableflow (go test):
//
//   node read_table.mjs <catalog-uri> <namespace> <table> [<sql-expr> ...]
//
// 1. GET <catalog-uri>/v1/namespaces/<ns>/tables/<table> (the REST spec's
//    LoadTableResult) and take its metadata-location (the metadata the
//    answer carries must name the same current snapshot);
// 2. read that metadata file (JSON), take the current snapshot and its
//    manifest list (Avro, read with avsc);
// 3. read every manifest (Avro) it names and keep the live entries (status
//    EXISTING or ADDED, not DELETED);
// 4. count and sum over those Parquet files with DuckDB's read_parquet.
//
// DuckDB's iceberg extension is not used (extensions are downloaded at run
// time, which this machine cannot do): steps 1 to 3 are what it would do.
// The reader does not apply delete files, so a snapshot that has any (a
// manifest of deletes with a live entry, or a delete entry in a data
// manifest) is an error rather than a wrong answer. Only local files
// (file:// locations) are read.
//
// It prints one JSON object:
//   {"rows": N, "manifest_rows": M, "sums": {"<sql-expr>": "<sum>"|null, ...},
//    "snapshot": "<id>"|null, "files": ["<data file location>", ...]}
// rows is DuckDB's count(*) over the files, manifest_rows the sum of the
// manifests' record_count, and each sum is DuckDB's sum(<sql-expr>) as text
// (exact for integers and decimals). files are in manifest order.
// Errors go to stderr with exit status 1.

import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import avro from 'avsc'
import { DuckDBInstance } from '@duckdb/node-api'

function die (msg) {
  process.stderr.write(`read_table: ${msg}\n`)
  process.exit(1)
}

// Snapshot ids are random 63-bit integers: JSON.parse would round them.
// The keys that hold one are quoted before parsing, so they stay exact.
const idKeys = /"(current-snapshot-id|snapshot-id|parent-snapshot-id)"\s*:\s*(-?\d+)/g
function parseMetadata (text) {
  return JSON.parse(text.replace(idKeys, '"$1":"$2"'))
}

// Avro longs (snapshot ids, sequence numbers, sizes) decoded as BigInt, so
// no value is rounded; avsc's own long type refuses values past 2^53.
const longType = avro.types.LongType.__with({
  fromBuffer: (buf) => buf.readBigInt64LE(),
  toBuffer: (n) => {
    const buf = Buffer.alloc(8)
    buf.writeBigInt64LE(BigInt(n))
    return buf
  },
  fromJSON: BigInt,
  toJSON: Number,
  isValid: (n) => typeof n === 'bigint',
  compare: (a, b) => (a < b ? -1 : a > b ? 1 : 0),
})

// localPath maps a file location to a path DuckDB and fs can open.
function localPath (location) {
  if (location.startsWith('file:')) return fileURLToPath(location)
  if (location.startsWith('/')) return location
  die(`${location}: only local files (file://) can be read here`)
}

// readAvro returns every record of an Avro object container file.
function readAvro (location) {
  return new Promise((resolve, reject) => {
    const records = []
    avro.createFileDecoder(localPath(location), {
      parseHook: (schema) => avro.Type.forSchema(schema, { registry: { long: longType }, wrapUnions: 'auto' }),
    })
      .on('data', (r) => records.push(r))
      .on('error', (e) => reject(new Error(`${location}: ${e.message}`)))
      .on('end', () => resolve(records))
  })
}

const DATA = 0 // content of data manifests and data files
const DELETED = 2 // manifest entry status

async function loadTable (catalog, ns, table) {
  const url = `${catalog.replace(/\/+$/, '')}/v1/namespaces/${encodeURIComponent(ns.split('.').join('\x1f'))}/tables/${encodeURIComponent(table)}`
  const res = await fetch(url, { headers: { Accept: 'application/json' } })
  const text = await res.text()
  if (!res.ok) die(`GET ${url}: ${res.status} ${text}`)
  const body = parseMetadata(text)
  const location = body['metadata-location']
  if (typeof location !== 'string' || location === '') die(`GET ${url}: no metadata-location in ${text}`)
  return { location, inline: body.metadata }
}

// currentSnapshot is the metadata's current snapshot id, or null for none
// (the key absent, null, or -1 as older writers put it).
function currentSnapshot (meta) {
  const id = meta['current-snapshot-id']
  return id === undefined || id === null || String(id) === '-1' ? null : String(id)
}

// liveDataFiles walks a snapshot's manifest list and manifests and returns
// the data files the snapshot holds, with their record counts.
async function liveDataFiles (manifestList) {
  const files = []
  for (const m of await readAvro(manifestList)) {
    const content = m.content === undefined ? DATA : m.content // v1 lists have no content
    const entries = await readAvro(m.manifest_path)
    for (const e of entries) {
      if (e.status === DELETED) continue
      const f = e.data_file
      const fileContent = f.content === undefined ? DATA : f.content
      if (content !== DATA || fileContent !== DATA) {
        die(`snapshot has delete file ${f.file_path} (manifest ${m.manifest_path}); this reader does not apply deletes`)
      }
      if (String(f.file_format).toUpperCase() !== 'PARQUET') die(`${f.file_path}: format ${f.file_format}, want PARQUET`)
      files.push({ path: f.file_path, records: BigInt(f.record_count) })
    }
  }
  return files
}

function sqlString (s) {
  return `'${s.replaceAll("'", "''")}'`
}

async function main () {
  const [catalog, ns, table, ...exprs] = process.argv.slice(2)
  if (!catalog || !ns || !table) die('usage: read_table.mjs <catalog-uri> <namespace> <table> [<sql-expr> ...]')

  const { location: metadataLocation, inline } = await loadTable(catalog, ns, table)
  const meta = parseMetadata(await readFile(localPath(metadataLocation), 'utf8'))
  const current = currentSnapshot(meta)
  // The catalog answers with the metadata too (the spec requires it): an
  // engine may use either, so they must name the same snapshot.
  if (!inline || typeof inline !== 'object') die(`${ns}.${table}: the catalog's LoadTableResult has no metadata`)
  if (currentSnapshot(inline) !== current) {
    die(`${ns}.${table}: the catalog's metadata has current snapshot ${currentSnapshot(inline)}, its metadata-location ${metadataLocation} has ${current}`)
  }
  const snap = current === null ? null : (meta.snapshots || []).find((s) => s['snapshot-id'] === current)
  if (current !== null && !snap) die(`${metadataLocation}: current snapshot ${current} not in snapshots`)
  if (snap && !snap['manifest-list']) die(`${metadataLocation}: snapshot ${current} has no manifest-list (v1 inline manifests are not read)`)

  const files = snap ? await liveDataFiles(snap['manifest-list']) : []
  const out = {
    rows: 0,
    manifest_rows: Number(files.reduce((n, f) => n + f.records, 0n)),
    sums: Object.fromEntries(exprs.map((e) => [e, null])),
    snapshot: snap ? snap['snapshot-id'] : null,
    files: files.map((f) => f.path),
  }
  if (files.length > 0) {
    const db = await DuckDBInstance.create(':memory:', {
      autoinstall_known_extensions: 'false',
      autoload_known_extensions: 'false',
      threads: '1',
    })
    const conn = await db.connect()
    const cols = ['CAST(count(*) AS VARCHAR) AS "rows"', ...exprs.map((e, i) => `CAST(sum(${e}) AS VARCHAR) AS "s${i}"`)]
    const list = files.map((f) => sqlString(localPath(f.path))).join(', ')
    // union_by_name: files written before a column was added lack it and
    // read it as NULL. Columns are matched by name, not by Iceberg field id
    // (a renamed column would read as NULL in older files; Runnel's tables
    // never rename).
    const sql = `SELECT ${cols.join(', ')} FROM read_parquet([${list}], union_by_name = true)`
    let row
    try {
      row = (await conn.runAndReadAll(sql)).getRowObjectsJson()[0]
    } catch (e) {
      die(`${e.message}\nquery: ${sql}`)
    }
    out.rows = Number(row.rows)
    exprs.forEach((e, i) => { out.sums[e] = row[`s${i}`] })
    conn.closeSync()
    db.closeSync()
  }
  process.stdout.write(JSON.stringify(out) + '\n')
}

main().catch((e) => die(e.stack || String(e)))
