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
}

func newProduceCommand(g *globalOptions) *cobra.Command {
	o := &produceOptions{}
	cmd := &cobra.Command{
		Use:   "produce TOPIC",
		Short: "Produce records read from standard input, one per line",
		Long: `Produce one record per line of standard input (the trailing newline is
removed). With --key-separator each line is split at the first separator into
key and value; a line without the separator becomes a value with no key.
A summary is printed to standard error when input ends.`,
		Example: `  echo hello | runnel produce events
  printf 'user1:clicked\nuser2:viewed\n' | runnel produce events --key-separator :
  runnel produce events --header source=cli --acks 1 --compression zstd < data.txt
  runnel produce events --partition 0 < data.txt`,
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
	if err := checkTopicPartition(ctx, g, topic, o.partition); err != nil {
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
	var readErr error
	for ctx.Err() == nil {
		line, err := readLine(r)
		if len(line) > 0 || err == nil {
			key, value := splitLine(line, o.keySep, o.nullEmpty)
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
