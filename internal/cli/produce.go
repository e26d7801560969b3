package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"
)

// maxLineBytes caps one input line of runnel produce.
const maxLineBytes = 64 << 20

type produceOptions struct {
	keySep      string
	headers     []string
	partition   int32
	acks        string
	compression string
	nullEmpty   bool
	schema      produceSchemaOptions
}

// produceSchemaOptions are the --schema flags of produce: lines are JSON
// documents encoded with a registry schema.
type produceSchemaOptions struct {
	registry   string
	subject    string
	id         int
	version    string
	message    string
	keySubject string
	keyID      int
	keyVersion string
	keyMessage string
}

// enabled reports whether any schema flag asks for encoding.
func (o *produceSchemaOptions) enabled() (value, key bool) {
	return o.subject != "" || o.id != 0, o.keySubject != "" || o.keyID != 0
}

// validate checks the schema flags without the network.
func (o *produceSchemaOptions) validate(keySep string) error {
	value, key := o.enabled()
	switch {
	case o.subject != "" && o.id != 0:
		return errors.New("use --schema SUBJECT or --schema-id N, not both")
	case o.keySubject != "" && o.keyID != 0:
		return errors.New("use --key-schema SUBJECT or --key-schema-id N, not both")
	case o.id < 0 || o.keyID < 0:
		return errors.New("--schema-id and --key-schema-id want a positive schema id")
	case o.version != "" && o.subject == "":
		return errors.New("--schema-version needs --schema SUBJECT")
	case o.keyVersion != "" && o.keySubject == "":
		return errors.New("--key-schema-version needs --key-schema SUBJECT")
	case o.message != "" && !value:
		return errors.New("--message needs --schema or --schema-id")
	case o.keyMessage != "" && !key:
		return errors.New("--key-message needs --key-schema or --key-schema-id")
	case key && keySep == "":
		return errors.New("--key-schema needs --key-separator: each line is KEY<separator>VALUE")
	}
	for _, v := range []string{o.version, o.keyVersion} {
		if v != "" {
			if _, err := parseVersion(v); err != nil {
				return fmt.Errorf("--schema-version: %w", err)
			}
		}
	}
	return nil
}

// codecs fetches and compiles the schemas the flags name; either may be
// nil.
func (o *produceSchemaOptions) codecs(ctx context.Context, sec *securityOptions) (value, key *schemaCodec, err error) {
	wantValue, wantKey := o.enabled()
	if !wantValue && !wantKey {
		return nil, nil, nil
	}
	r, err := newSchemaResolver(o.registry, sec)
	if err != nil {
		return nil, nil, err
	}
	version := func(s string) int {
		if s == "" {
			return -1
		}
		v, _ := parseVersion(s)
		return v
	}
	if wantValue {
		if value, err = r.forProduce(ctx, o.subject, version(o.version), o.id, o.message); err != nil {
			return nil, nil, err
		}
	}
	if wantKey {
		if key, err = r.forProduce(ctx, o.keySubject, version(o.keyVersion), o.keyID, o.keyMessage); err != nil {
			return nil, nil, fmt.Errorf("key schema: %w", err)
		}
	}
	return value, key, nil
}

func newProduceCommand(g *globalOptions) *cobra.Command {
	o := &produceOptions{}
	cmd := &cobra.Command{
		Use:   "produce TOPIC",
		Short: "Produce records read from standard input, one per line",
		Long: `Produce one record per line of standard input (the trailing newline is
removed). With --key-separator each line is split at the first separator into
key and value; a line without the separator becomes a value with no key.
A summary is printed to standard error when input ends.

With --schema SUBJECT (or --schema-id N) every value is a JSON document that
is encoded with the subject's latest schema (or --schema-version) from the
schema registry (--registry) into the Confluent wire format: magic byte 0, the
4-byte schema id, then Avro binary, Protobuf (message indexes, then the
message chosen by --message, default the schema's first) or the JSON itself
after validation against the JSON Schema. Avro unions take either the Avro
JSON form {"branch": value} or a plain value that only one branch accepts;
bytes and fixed are strings of code points \u0000-\u00ff; record fields left
out take their defaults. --key-schema does the same for keys (with
--key-separator). A line that does not match its schema stops the command
with an error naming the line; nothing from that line on is produced.`,
		Example: `  echo hello | runnel produce events
  printf 'user1:clicked\nuser2:viewed\n' | runnel produce events --key-separator :
  runnel produce events --header source=cli --acks 1 --compression zstd < data.txt
  runnel produce events --partition 0 < data.txt
  echo '{"id":1,"name":"ann"}' | runnel produce users --schema users-value
  runnel produce orders --schema-id 7 --message shop.Order < orders.jsonl
  printf '{"id":1}\t{"total":9.5}\n' | runnel produce orders -K $'\t' --key-schema orders-key --schema orders-value`,
		Args: exactArgs(1, "TOPIC"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runProduce(cmd.Context(), g, o, args[0], cmd.InOrStdin(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.keySep, "key-separator", "K", "", "split each line into key and value at the first occurrence of this string")
	f.StringArrayVarP(&o.headers, "header", "H", nil, "add a header key=value to every record (repeatable)")
	f.Int32VarP(&o.partition, "partition", "p", -1, "write every record to this partition (-1 = partition by key)")
	f.StringVar(&o.acks, "acks", "all", "acknowledgements to wait for: all, 1 or 0")
	f.StringVarP(&o.compression, "compression", "z", "none", "batch compression: none, gzip, snappy, lz4 or zstd")
	f.BoolVar(&o.nullEmpty, "null-empty", false, "send an empty value as null (a tombstone on compacted topics)")
	f.StringVar(&o.schema.subject, "schema", "", "encode each value (a JSON document) with this subject's schema")
	f.IntVar(&o.schema.id, "schema-id", 0, "encode each value with the schema of this id")
	f.StringVar(&o.schema.version, "schema-version", "", "version of the --schema subject (default latest)")
	f.StringVar(&o.schema.message, "message", "", "Protobuf message to write (full name or name in the package; default the first)")
	f.StringVar(&o.schema.keySubject, "key-schema", "", "encode each key (a JSON document) with this subject's schema")
	f.IntVar(&o.schema.keyID, "key-schema-id", 0, "encode each key with the schema of this id")
	f.StringVar(&o.schema.keyVersion, "key-schema-version", "", "version of the --key-schema subject (default latest)")
	f.StringVar(&o.schema.keyMessage, "key-message", "", "Protobuf message of the key (default the first)")
	addRegistryFlag(f, &o.schema.registry)
	return cmd
}

// clientOpts validates produce flags and returns the client options they
// imply.
func (o *produceOptions) clientOpts(topic string) ([]kgo.Opt, error) {
	acks, err := parseAcks(o.acks)
	if err != nil {
		return nil, err
	}
	codec, err := parseCompression(o.compression)
	if err != nil {
		return nil, err
	}
	if o.partition < -1 {
		return nil, fmt.Errorf("--partition %d: want a partition number (or -1)", o.partition)
	}
	opts := []kgo.Opt{
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(acks),
		kgo.ProducerBatchCompression(codec),
		kgo.UnknownTopicRetries(2),
		kgo.RecordDeliveryTimeout(time.Minute),
	}
	if acks != kgo.AllISRAcks() {
		opts = append(opts, kgo.DisableIdempotentWrite())
	}
	if o.partition >= 0 {
		opts = append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	}
	return opts, nil
}

// splitLine turns one input line into a record's key and value.
func splitLine(line []byte, sep string, nullEmpty bool) (key, value []byte) {
	value = line
	if sep != "" {
		if k, v, ok := bytes.Cut(line, []byte(sep)); ok {
			key, value = k, v
		}
	}
	if nullEmpty && len(value) == 0 {
		value = nil
	} else if value == nil {
		value = []byte{}
	}
	return key, value
}

func runProduce(ctx context.Context, g *globalOptions, o *produceOptions, topic string, in io.Reader, errOut io.Writer) error {
	headers, err := parseHeaders(o.headers)
	if err != nil {
		return err
	}
	opts, err := o.clientOpts(topic)
	if err != nil {
		return err
	}
	if err := o.schema.validate(o.keySep); err != nil {
		return err
	}
	if err := checkTopicPartition(ctx, g, topic, o.partition); err != nil {
		return err
	}
	valueCodec, keyCodec, err := o.schema.codecs(ctx, &g.sec)
	if err != nil {
		return err
	}
	cl, err := g.newClient(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()

	var (
		ok, failed atomic.Int64
		mu         sync.Mutex
		firstErr   error
		sent       int64
	)
	promise := func(_ *kgo.Record, err error) {
		if err == nil {
			ok.Add(1)
			return
		}
		failed.Add(1)
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
	}
	r := bufio.NewReaderSize(in, 64<<10)
	var (
		readErr, encErr error
		lineNo          int
	)
	for ctx.Err() == nil {
		line, err := readLine(r)
		if len(line) > 0 || err == nil {
			lineNo++
			key, value := splitLine(line, o.keySep, o.nullEmpty)
			if key, value, encErr = encodeRecord(keyCodec, valueCodec, key, value); encErr != nil {
				encErr = fmt.Errorf("line %d: %w", lineNo, encErr)
				break
			}
			rec := &kgo.Record{Key: key, Value: value, Partition: o.partition}
			if len(headers) > 0 {
				rec.Headers = append([]kgo.RecordHeader(nil), headers...)
			}
			sent++
			cl.Produce(ctx, rec, promise)
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				readErr = err
			}
			break
		}
	}
	flushErr := cl.Flush(ctx)
	mu.Lock()
	fe := firstErr
	mu.Unlock()
	fmt.Fprintf(errOut, "Produced %d of %d records to topic %q.\n", ok.Load(), sent, topic)
	switch {
	case encErr != nil:
		return fmt.Errorf("%w (line %d and later were not produced)", encErr, lineNo)
	case readErr != nil:
		return fmt.Errorf("read input: %w", readErr)
	case fe != nil:
		return fmt.Errorf("%d records failed; first error: %w", failed.Load(), topicErr(topic, fe, ""))
	case ctx.Err() != nil:
		return ctx.Err()
	case flushErr != nil:
		return fmt.Errorf("flush: %w", flushErr)
	}
	return nil
}

// encodeRecord encodes key and value with their codecs (nil codecs leave
// them as they are; a null value stays a tombstone).
func encodeRecord(keyCodec, valueCodec *schemaCodec, key, value []byte) ([]byte, []byte, error) {
	var err error
	if keyCodec != nil {
		if key == nil {
			return nil, nil, errors.New("no key: the line has no key separator, and --key-schema needs a key")
		}
		if key, err = keyCodec.encode(key); err != nil {
			return nil, nil, fmt.Errorf("key %w", err)
		}
	}
	if valueCodec != nil && value != nil {
		if value, err = valueCodec.encode(value); err != nil {
			return nil, nil, fmt.Errorf("value %w", err)
		}
	}
	return key, value, nil
}

// readLine returns the next line without its "\n" or "\r\n", copied so the
// caller may keep it. At the end of input it returns the final unterminated
// line (possibly empty) with io.EOF.
func readLine(r *bufio.Reader) ([]byte, error) {
	var buf []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if len(buf)+len(chunk) > maxLineBytes {
			return nil, fmt.Errorf("line longer than %d bytes", maxLineBytes)
		}
		buf = append(buf, chunk...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			return buf, err
		}
		buf = buf[:len(buf)-1]
		if n := len(buf); n > 0 && buf[n-1] == '\r' {
			buf = buf[:n-1]
		}
		return buf, nil
	}
}
