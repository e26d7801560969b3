// Package objstore owns Runnel's access to object storage: intake objects,
// segment objects and checkpoints are all written and read through Store.
//
// Store is a deliberately small contract (Put, Get, GetRange, Delete, List)
// implemented on gocloud.dev/blob for a local directory (file://), memory
// (mem://), S3 and S3-compatible servers (s3://), Google Cloud Storage (gs://)
// and Azure Blob Storage (azblob://). The local directory store adds what
// fileblob lacks: a Put is fsync'd (file and directory) before it returns,
// because an acknowledged record must survive a crash (DESIGN §8.1, §10).
//
// EncryptedStore is a decorator that envelope-encrypts every object at rest
// (encrypt.go describes the format; keys.go the key-encryption keys, their
// start-up checks and the re-wrap pass behind `runnel keys rewrap`).
//
// Apart from that decorator's own headers, the package never interprets
// object contents, never retries (callers decide what a failed Put means
// for their protocol), and never logs: every failure is returned to the
// caller, wrapped with the key it concerns.
package objstore
