package objstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/middleware"
	"gocloud.dev/blob"
	"gocloud.dev/blob/memblob"
	"gocloud.dev/gcerrors"

	// Register the cloud URL schemes on blob.DefaultURLMux.
	_ "gocloud.dev/blob/azureblob"
	_ "gocloud.dev/blob/gcsblob"
	_ "gocloud.dev/blob/s3blob"
)

// bucketStore implements Store on a gocloud.dev blob.Bucket. The file store
// embeds it and replaces Put and List.
type bucketStore struct {
	b      *blob.Bucket
	closed atomic.Bool
	// s3, for an S3 store, sends Puts straight to the S3 client.
	s3 *s3Put
}

// s3Put writes an object of at most maxSinglePut bytes with one PutObject
// whose body is the caller's bytes.
//
// gocloud's writer goes through the SDK's transfer manager, which reads the
// body through a pipe into a buffer it grows from 512 bytes by io.ReadAll
// (transfermanager v0.4): every intake object was copied several times into
// fresh memory that was zeroed and later handed back to the kernel. At 50 MB/s
// that was a quarter of the broker's CPU, and on a 2-core machine the produce
// tail waited for CPU. A bytes.Reader body is sent in place, and rewound if
// the SDK retries.
//
// The body is protected by its CRC-32C, which the request carries in a
// signed header and the server checks, not by a SHA-256 in the signature:
// the SDK signs no payload over HTTPS either, and over plain HTTP the hash
// was a tenth of the broker's CPU at 50 MB/s (and the server's check of it
// as much again).
type s3Put struct {
	client *s3.Client
	bucket string
	// sse and kmsKey carry the URL's ssetype and kmskeyid parameters, which
	// gocloud applies to its own writes.
	sse    s3types.ServerSideEncryption
	kmsKey string
}

// maxSinglePut is the largest object s3Put sends in one request; larger
// ones go through gocloud's multipart upload (S3 takes at most 5 GiB in one
// PutObject; far below that, parts upload in parallel and retry alone).
const maxSinglePut = 64 << 20

func (p *s3Put) put(ctx context.Context, key string, data []byte) error {
	in := &s3.PutObjectInput{
		Bucket: aws.String(p.bucket),
		// A valid key (ValidateKey) is one gocloud's key escaping leaves
		// unchanged: it escapes only control characters and "../".
		Key:               aws.String(key),
		Body:              bytes.NewReader(data),
		ContentLength:     aws.Int64(int64(len(data))),
		ContentType:       aws.String(contentType),
		ChecksumAlgorithm: s3types.ChecksumAlgorithmCrc32c,
	}
	if p.sse != "" {
		in.ServerSideEncryption = p.sse
	}
	if p.kmsKey != "" {
		in.SSEKMSKeyId = aws.String(p.kmsKey)
	}
	_, err := p.client.PutObject(ctx, in, unsignedPayload)
	return err
}

// unsignedPayload signs a request without hashing its body. It runs first
// in the finalize step: the checksum middleware computes the SHA-256 along
// with the checksum unless the payload hash is already set.
func unsignedPayload(o *s3.Options) {
	o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
		return st.Finalize.Add(middleware.FinalizeMiddlewareFunc("RunnelUnsignedPayload",
			func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
				return next.HandleFinalize(v4.SetPayloadHash(ctx, "UNSIGNED-PAYLOAD"), in)
			}), middleware.Before)
	})
}

func openMem() Store {
	return &bucketStore{b: memblob.OpenBucket(nil)}
}

func openCloud(ctx context.Context, u *url.URL) (Store, error) {
	b, err := blob.OpenBucket(ctx, u.String())
	if err != nil {
		return nil, fmt.Errorf("objstore: open %s://%s: %w", u.Scheme, u.Host, err)
	}
	s := &bucketStore{b: b}
	var client *s3.Client
	if u.Scheme == "s3" && b.As(&client) {
		q := u.Query()
		s.s3 = &s3Put{client: client, bucket: u.Host,
			sse: s3types.ServerSideEncryption(q.Get("ssetype")), kmsKey: q.Get("kmskeyid")}
	}
	return s, nil
}

// contentType is every object's: a fixed content type avoids gocloud's
// content sniffing, which would buffer the first 512 bytes.
const contentType = "application/octet-stream"

// writerOptions are used for every Put through gocloud.
func writerOptions() *blob.WriterOptions {
	return &blob.WriterOptions{ContentType: contentType}
}

func (s *bucketStore) check(ctx context.Context, key string) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if err := ValidateKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("objstore: %q: %w", key, err)
	}
	return nil
}

// wrap turns a gocloud error into one of ours, naming the operation and key.
func wrap(op, key string, err error) error {
	if err == nil {
		return nil
	}
	if gcerrors.Code(err) == gcerrors.NotFound {
		return fmt.Errorf("objstore: %s %q: %w", op, key, ErrNotFound)
	}
	return fmt.Errorf("objstore: %s %q: %w", op, key, err)
}

func (s *bucketStore) Put(ctx context.Context, key string, data []byte) error {
	if err := s.check(ctx, key); err != nil {
		return err
	}
	if s.s3 != nil && len(data) <= maxSinglePut {
		return wrap("put", key, s.s3.put(ctx, key, data))
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := s.b.NewWriter(ctx, key, writerOptions())
	if err != nil {
		return wrap("put", key, err)
	}
	if _, err := w.Write(data); err != nil {
		cancel() // abort: the object must not be committed
		_ = w.Close()
		return wrap("put", key, err)
	}
	return wrap("put", key, w.Close())
}

func (s *bucketStore) Get(ctx context.Context, key string) ([]byte, error) {
	if err := s.check(ctx, key); err != nil {
		return nil, err
	}
	r, err := s.b.NewReader(ctx, key, nil)
	if err != nil {
		return nil, wrap("get", key, err)
	}
	defer r.Close()
	buf := make([]byte, r.Size())
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, wrap("get", key, err)
	}
	// An object replaced while we read it may be longer than first reported.
	var one [1]byte
	if n, _ := r.Read(one[:]); n != 0 {
		return nil, fmt.Errorf("objstore: get %q: object changed while reading", key)
	}
	return buf, nil
}

func (s *bucketStore) GetRange(ctx context.Context, key string, off, length int64) ([]byte, error) {
	if err := s.check(ctx, key); err != nil {
		return nil, err
	}
	if off < 0 || length < 0 {
		return nil, fmt.Errorf("objstore: get %q [%d, +%d): %w", key, off, length, ErrOutOfRange)
	}
	if length == 0 {
		attrs, err := s.b.Attributes(ctx, key)
		if err != nil {
			return nil, wrap("get", key, err)
		}
		if off > attrs.Size {
			return nil, fmt.Errorf("objstore: get %q [%d, +0) of %d bytes: %w", key, off, attrs.Size, ErrOutOfRange)
		}
		return []byte{}, nil
	}
	r, err := s.b.NewRangeReader(ctx, key, off, length, nil)
	if err != nil {
		if gcerrors.Code(err) != gcerrors.NotFound {
			// Some servers reject a range starting past the end outright.
			if attrs, aerr := s.b.Attributes(ctx, key); aerr == nil && off+length > attrs.Size {
				return nil, fmt.Errorf("objstore: get %q [%d, +%d) of %d bytes: %w", key, off, length, attrs.Size, ErrOutOfRange)
			}
		}
		return nil, wrap("get", key, err)
	}
	defer r.Close()
	if size := r.Size(); off+length > size {
		return nil, fmt.Errorf("objstore: get %q [%d, +%d) of %d bytes: %w", key, off, length, size, ErrOutOfRange)
	}
	buf := make([]byte, length)
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("objstore: get %q [%d, +%d): short read: %w", key, off, length, ErrOutOfRange)
		}
		return nil, wrap("get", key, err)
	}
	return buf, nil
}

func (s *bucketStore) Delete(ctx context.Context, key string) error {
	if err := s.check(ctx, key); err != nil {
		return err
	}
	err := s.b.Delete(ctx, key)
	if gcerrors.Code(err) == gcerrors.NotFound {
		return nil
	}
	return wrap("delete", key, err)
}

func (s *bucketStore) List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("objstore: list %q: %w", prefix, err)
	}
	it := s.b.List(&blob.ListOptions{Prefix: prefix})
	last := ""
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("objstore: list %q: %w", prefix, err)
		}
		if obj.IsDir {
			continue
		}
		if obj.Key <= last && last != "" {
			return fmt.Errorf("objstore: list %q: backend returned %q after %q, out of order", prefix, obj.Key, last)
		}
		last = obj.Key
		if err := fn(ObjectInfo{Key: obj.Key, Size: obj.Size, ModTime: obj.ModTime}); err != nil {
			return err
		}
	}
}

func (s *bucketStore) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	return s.b.Close()
}
