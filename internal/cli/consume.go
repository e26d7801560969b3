package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
)

type consumeOptions struct {
	fromBeginning bool
	offset        int64
	offsetSet     bool
	partition     int32
	timestamp     string
	group         string
	maxMessages   int64
	timeout       time.Duration
	format        string
	formatSet     bool
	printKey      bool
	isolation     string
	schemaMode    string
	registry      string
}

func newConsumeCommand(g *globalOptions) *cobra.Command {
	o := &consumeOptions{}
	cmd := &cobra.Command{
		Use:   "consume TOPIC",
		Short: "Print records of a topic to standard output",
		Long: `Print records of a topic to standard output, one formatted record at a time.

Without --group the command reads all partitions (or the one given with
--partition) directly and commits nothing. With --group it joins that consumer
group, reads the partitions assigned to it, and commits the offsets of the
records it printed; --from-beginning and --timestamp then only apply where the
group has no committed offset yet.

By default reading starts at the end of each partition (new records only).

Records written in the schema registry wire format (magic byte 0 and a 4-byte
schema id, as produce --schema and Confluent serializers write them) are
printed as JSON: the schema is fetched by id from --registry (once per id)
and Avro, Protobuf and JSON Schema payloads are decoded. --schema=auto (the
default) decodes what it can and prints anything else unchanged; --schema
(on) requires every non-null value to decode and stops with an error
otherwise; --schema=off prints the bytes as they are. Keys are decoded when
they are in the wire format. Avro unions print plainly when only that branch
accepts the value and as {"branch": value} otherwise, so the output can be
fed back to produce --schema.

` + formatHelp,
		Example: `  runnel consume events --from-beginning
  runnel consume events --group audit --max-messages 100
  runnel consume events --partition 2 --offset 1500
  runnel consume events --partition 0 --offset -10       # the last 10 records
  runnel consume events --timestamp 2024-05-01T12:00:00Z --timeout 5s
  runnel consume events --from-beginning --format '%p:%o %k=%v %h\n'
  runnel consume users --from-beginning --schema --registry http://127.0.0.1:8081`,
		Args: exactArgs(1, "TOPIC"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.offsetSet = cmd.Flags().Changed("offset")
			o.formatSet = cmd.Flags().Changed("format")
			return runConsume(cmd.Context(), g, o, args[0], cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.fromBeginning, "from-beginning", false, "start at the earliest offset of each partition")
	f.Int64VarP(&o.offset, "offset", "o", 0, "start at this offset of --partition; a negative N starts N records before the end")
	f.Int32VarP(&o.partition, "partition", "p", -1, "read only this partition")
	f.StringVar(&o.timestamp, "timestamp", "", "start at the first record at or after this time (RFC 3339 or Unix ms)")
	f.StringVarP(&o.group, "group", "g", "", "consume as a member of this consumer group, committing offsets")
	f.Int64VarP(&o.maxMessages, "max-messages", "n", 0, "exit after printing this many records (0 = no limit)")
	f.DurationVar(&o.timeout, "timeout", 0, "exit when no record arrives for this long (0 = wait forever)")
	f.StringVarP(&o.format, "format", "f", "%v\\n", "output format; see placeholders above")
	f.BoolVar(&o.printKey, "print-key", false, `print the key before the value, tab-separated (format "%k\t%v\n")`)
	f.StringVar(&o.isolation, "isolation", "read_uncommitted", "read_committed hides aborted and open transactions; or read_uncommitted")
	f.StringVar(&o.schemaMode, "schema", "auto", "decode schema registry wire format: auto, on (--schema alone) or off")
	f.Lookup("schema").NoOptDefVal = "on"
	addRegistryFlag(f, &o.registry)
	return cmd
}

// startOffset validates the start-position flags and returns where reading
// begins.
func (o *consumeOptions) startOffset() (kgo.Offset, error) {
	n := 0
	for _, set := range []bool{o.fromBeginning, o.offsetSet, o.timestamp != ""} {
		if set {
			n++
		}
	}
	if n > 1 {
		return kgo.Offset{}, errors.New("use only one of --from-beginning, --offset and --timestamp")
	}
	if o.partition < -1 {
		return kgo.Offset{}, fmt.Errorf("--partition %d: want a partition number", o.partition)
	}
	if o.group != "" && o.partition >= 0 {
		return kgo.Offset{}, errors.New("--partition cannot be used with --group: the group assigns partitions")
	}
	if o.group != "" && o.offsetSet {
		return kgo.Offset{}, errors.New("--offset cannot be used with --group; use 'runnel group reset-offsets' to move a group")
	}
	if o.offsetSet && o.partition < 0 {
		return kgo.Offset{}, errors.New("--offset needs --partition: offsets are per partition")
	}
	if o.maxMessages < 0 {
		return kgo.Offset{}, fmt.Errorf("--max-messages %d: must not be negative", o.maxMessages)
	}
	if o.timeout < 0 {
		return kgo.Offset{}, fmt.Errorf("--timeout %s: must not be negative", o.timeout)
	}
	switch {
	case o.fromBeginning:
		return kgo.NewOffset().AtStart(), nil
	case o.offsetSet && o.offset >= 0:
		return kgo.NewOffset().At(o.offset), nil
	case o.offsetSet:
		return kgo.NewOffset().AtEnd().Relative(o.offset), nil
	case o.timestamp != "":
		t, err := parseTime("timestamp", o.timestamp)
		if err != nil {
			return kgo.Offset{}, err
		}
		return kgo.NewOffset().AfterMilli(t.UnixMilli()), nil
	}
	return kgo.NewOffset().AtEnd(), nil
}

// outputFormat returns the compiled format implied by --format and
// --print-key.
func (o *consumeOptions) outputFormat() (*recordFormat, error) {
	if o.printKey && o.formatSet {
		return nil, errors.New("--print-key cannot be combined with --format; put %k in the format")
	}
	if o.printKey {
		return parseFormat(`%k\t%v\n`)
	}
	return parseFormat(o.format)
}

func runConsume(ctx context.Context, g *globalOptions, o *consumeOptions, topic string, out, errOut io.Writer) error {
	start, err := o.startOffset()
	if err != nil {
		return err
	}
	format, err := o.outputFormat()
	if err != nil {
		return err
	}
	iso, err := parseIsolation(o.isolation)
	if err != nil {
		return err
	}
	dec, err := newRecordDecoder(o.schemaMode, o.registry, &g.sec, errOut)
	if err != nil {
		return err
	}
	if err := checkTopicPartition(ctx, g, topic, o.partition); err != nil {
		return err
	}
	opts := []kgo.Opt{kgo.FetchIsolationLevel(iso)}
	switch {
	case o.group != "":
		opts = append(opts,
			kgo.ConsumerGroup(o.group),
			kgo.ConsumeTopics(topic),
			kgo.ConsumeResetOffset(start),
			kgo.AutoCommitMarks(),
		)
	case o.partition >= 0:
		opts = append(opts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {o.partition: start}}))
	default:
		opts = append(opts, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(start))
	}
	cl, err := g.newClient(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()

	w := bufio.NewWriterSize(out, 64<<10)
	var (
		printed int64
		buf     []byte
		runErr  error
	)
loop:
	for {
		pollCtx, cancel := ctx, context.CancelFunc(func() {})
		if o.timeout > 0 {
			pollCtx, cancel = context.WithTimeout(ctx, o.timeout)
		}
		fetches := cl.PollFetches(pollCtx)
		cancel()
		var recs []*kgo.Record
		fetches.EachRecord(func(r *kgo.Record) {
			if runErr != nil || (o.maxMessages > 0 && printed >= o.maxMessages) {
				return
			}
			shown := r
			if dec != nil {
				var derr error
				if shown, derr = dec.record(ctx, r); derr != nil {
					runErr = fmt.Errorf("partition %d offset %d: %w", r.Partition, r.Offset, derr)
					return
				}
			}
			buf = format.Append(buf[:0], shown)
			if _, err := w.Write(buf); err != nil && runErr == nil {
				runErr = fmt.Errorf("write output: %w", err)
			}
			printed++
			recs = append(recs, r)
		})
		if err := w.Flush(); err != nil && runErr == nil {
			runErr = fmt.Errorf("write output: %w", err)
		}
		if o.group != "" && len(recs) > 0 {
			cl.MarkCommitRecords(recs...)
		}
		if runErr != nil {
			break
		}
		if o.maxMessages > 0 && printed >= o.maxMessages {
			break
		}
		for _, fe := range fetches.Errors() {
			switch {
			case errors.Is(fe.Err, context.DeadlineExceeded) && ctx.Err() == nil:
				if len(recs) == 0 {
					fmt.Fprintf(errOut, "No record for %s; stopping.\n", o.timeout)
					break loop
				}
			case errors.Is(fe.Err, context.Canceled), errors.Is(fe.Err, kgo.ErrClientClosed):
				break loop
			case errors.Is(fe.Err, context.DeadlineExceeded):
				break loop
			default:
				runErr = fmt.Errorf("partition %d: %w", fe.Partition, topicErr(fe.Topic, fe.Err, ""))
				break loop
			}
		}
		if ctx.Err() != nil {
			break
		}
	}
	if o.group != "" {
		commitCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := cl.CommitMarkedOffsets(commitCtx); err != nil && runErr == nil {
			runErr = groupErr(o.group, fmt.Errorf("commit offsets: %w", err), "")
		}
		cancel()
	}
	fmt.Fprintf(errOut, "Consumed %d records.\n", printed)
	return runErr
}

// checkTopicPartition fails early and clearly when the topic or partition
// does not exist, instead of waiting for it forever.
func checkTopicPartition(ctx context.Context, g *globalOptions, topic string, partition int32) error {
	cl, err := g.newClient()
	if err != nil {
		return err
	}
	adm := kadm.NewClient(cl)
	defer adm.Close()
	topics, err := adm.ListTopicsWithInternal(ctx, topic)
	if err != nil {
		return fmt.Errorf("look up topic %q: %w", topic, err)
	}
	td, ok := topics[topic]
	if !ok || errors.Is(td.Err, kerr.UnknownTopicOrPartition) {
		return fmt.Errorf("topic %q does not exist (create it with: runnel topic create %s)", topic, topic)
	}
	if td.Err != nil {
		return topicErr(topic, td.Err, "")
	}
	if partition >= 0 {
		if _, ok := td.Partitions[partition]; !ok {
			return fmt.Errorf("topic %q has no partition %d (it has %d partitions)", topic, partition, len(td.Partitions))
		}
	}
	return nil
}

// recordDecoder turns keys and values in the schema registry wire format
// into JSON for consume.
type recordDecoder struct {
	strict bool // --schema on: every non-null value must decode
	res    *schemaResolver
	errOut io.Writer
	// down is set in auto mode once the registry cannot be reached, so
	// the rest is printed raw without a request per record.
	down bool
}

// newRecordDecoder returns the decoder for --schema mode, or nil for off.
func newRecordDecoder(mode, registryURL string, sec *securityOptions, errOut io.Writer) (*recordDecoder, error) {
	var strict bool
	switch strings.ToLower(mode) {
	case "off", "false", "no":
		return nil, nil
	case "auto":
	case "on", "true", "yes":
		strict = true
	default:
		return nil, fmt.Errorf("--schema %q: want auto, on or off", mode)
	}
	res, err := newSchemaResolver(registryURL, sec)
	if err != nil {
		return nil, err
	}
	return &recordDecoder{strict: strict, res: res, errOut: errOut}, nil
}

// record returns r with its key and value decoded where they are in the
// wire format (a shallow copy; r is not changed).
func (d *recordDecoder) record(ctx context.Context, r *kgo.Record) (*kgo.Record, error) {
	key, err := d.decode(ctx, r.Key, "key", false)
	if err != nil {
		return nil, err
	}
	value, err := d.decode(ctx, r.Value, "value", d.strict && r.Value != nil)
	if err != nil {
		return nil, err
	}
	out := *r
	out.Key, out.Value = key, value
	return &out, nil
}

func (d *recordDecoder) decode(ctx context.Context, b []byte, what string, required bool) ([]byte, error) {
	id, payload, err := wire.DecodeID(b)
	if err != nil {
		if required {
			return nil, fmt.Errorf("%s is not in the schema registry wire format (magic byte 0, then a 4-byte schema id); use --schema=auto to print such records as they are", what)
		}
		return b, nil
	}
	if d.down && !d.strict {
		return b, nil
	}
	c, err := d.res.forID(ctx, id)
	if err != nil {
		if d.strict {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		var re *sr.ResponseError
		if !errors.As(err, &re) && ctx.Err() == nil {
			d.down = true
			fmt.Fprintf(d.errOut, "Not decoding schema ids: %v\n", err)
		}
		return b, nil
	}
	out, err := c.decode(payload)
	if err != nil {
		if d.strict {
			return nil, fmt.Errorf("%s with schema id %d: %w", what, id, err)
		}
		return b, nil
	}
	return out, nil
}
