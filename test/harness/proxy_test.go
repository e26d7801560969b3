package harness

import (
	"bufio"
	"net"
	"testing"
	"time"
)

// TestProxyCutAndRestore checks what the fault tests rely on: a cut closes
// the connections already forwarded and refuses new ones, and a restore
// forwards again.
func TestProxyCutAndRestore(t *testing.T) {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					c.Write(append(sc.Bytes(), '\n'))
				}
			}()
		}
	}()
	p := StartProxy(t, echo.Addr().String())
	roundTrip := func(c net.Conn) error {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte("ping\n")); err != nil {
			return err
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		if err == nil && line != "ping\n" {
			t.Fatalf("echo answered %q", line)
		}
		return err
	}
	dial := func() net.Conn {
		c, err := net.Dial("tcp", p.Addr())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	before := dial()
	if err := roundTrip(before); err != nil {
		t.Fatalf("through the proxy: %v", err)
	}
	p.Cut()
	if err := roundTrip(before); err == nil {
		t.Fatal("a connection open before the cut still works")
	}
	if err := roundTrip(dial()); err == nil {
		t.Fatal("a connection made during the cut works")
	}
	p.Restore()
	if err := roundTrip(dial()); err != nil {
		t.Fatalf("after restore: %v", err)
	}
}
