// Command peer runs the durable single-node log Runnel's benchmarks are
// compared against: franz-go's kfake persisting every batch to a directory
// with an fsync per batch (DataDir and SyncWrites), on 127.0.0.1.
//
//	go run . --port 39092 --data-dir /tmp/peer
//
// It serves until interrupted. Its own module keeps kfake out of Runnel's
// dependencies.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

func main() {
	port := flag.Int("port", 39092, "port to listen on (127.0.0.1)")
	dir := flag.String("data-dir", "", "directory the log is persisted to (required)")
	partitions := flag.Int("partitions", 16, "partitions of topics created by CreateTopics with -1 or by Metadata")
	sync := flag.Bool("sync", true, "fsync every batch (SyncWrites); false leaves durability to the page cache")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "peer: --data-dir is required")
		os.Exit(2)
	}
	opts := []kfake.Opt{
		kfake.Ports(*port),
		kfake.DataDir(*dir),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(*partitions),
	}
	if *sync {
		opts = append(opts, kfake.SyncWrites())
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "peer:", err)
		os.Exit(1)
	}
	fmt.Println("peer: listening on", c.ListenAddrs())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	c.Close()
}
