package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Redis, the reference a user compares with: redis-server as Debian ships
// it, started here on a free loopback port with persistence off, and
// measured with redis-benchmark. Keys are redis-benchmark's own
// ("key:" and 12 digits, the form -r gives __rand_int__), preloaded here so
// that its gets hit.

type redisServer struct {
	c    *child
	addr string
	port int
}

// startRedis starts redis-server on a free port and waits for PONG.
func startRedis(ctx context.Context, exe string) (*redisServer, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	args := []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--daemonize", "no", "--protected-mode", "no", "--loglevel", "warning", "--dir", "/tmp"}
	c, err := startChild("redis-server", exe, args, nil)
	if err != nil {
		return nil, err
	}
	r := &redisServer{c: c, addr: fmt.Sprintf("127.0.0.1:%d", port), port: port}
	deadline := time.Now().Add(childStartTimeout)
	for {
		if _, err := r.do("PING"); err == nil {
			return r, nil
		}
		select {
		case <-c.done:
			return nil, fmt.Errorf("redis-server exited: %v: %s", c.err, c.tail)
		case <-ctx.Done():
			c.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			c.stop()
			return nil, fmt.Errorf("redis-server did not answer PING within %s", childStartTimeout)
		}
	}
}

func (r *redisServer) stop() { r.c.stop() }

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// do sends one command and returns its reply as text (status, integer or
// bulk string).
func (r *redisServer) do(args ...string) (string, error) {
	conn, err := net.DialTimeout("tcp", r.addr, time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	w := bufio.NewWriter(conn)
	writeCommand(w, args...)
	if err := w.Flush(); err != nil {
		return "", err
	}
	return readReply(bufio.NewReader(conn))
}

// load writes keys key:<12 digits> 0..n-1 with a value of size bytes,
// pipelined in windows of a thousand commands.
func (r *redisServer) load(ctx context.Context, n, size int) error {
	conn, err := net.DialTimeout("tcp", r.addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	value := string(bytes.Repeat([]byte{'x'}, size))
	w, rd := bufio.NewWriterSize(conn, 1<<16), bufio.NewReaderSize(conn, 1<<16)
	const window = 1000
	for lo := 0; lo < n; lo += window {
		if err := ctx.Err(); err != nil {
			return err
		}
		_ = conn.SetDeadline(time.Now().Add(time.Minute))
		hi := min(lo+window, n)
		for i := lo; i < hi; i++ {
			writeCommand(w, "SET", redisKey(i), value)
		}
		if err := w.Flush(); err != nil {
			return err
		}
		for i := lo; i < hi; i++ {
			if rep, err := readReply(rd); err != nil {
				return fmt.Errorf("redis load: SET %s: %w", redisKey(i), err)
			} else if rep != "OK" {
				return fmt.Errorf("redis load: SET %s: %q", redisKey(i), rep)
			}
		}
	}
	return nil
}

// redisKey is redis-benchmark's key for i under -r.
func redisKey(i int) string { return fmt.Sprintf("key:%012d", i) }

// memory returns INFO memory's used_memory_rss and used_memory, and DBSIZE.
func (r *redisServer) memory() (rss, used, keys int64, err error) {
	info, err := r.do("INFO", "memory")
	if err != nil {
		return 0, 0, 0, err
	}
	fields := parseInfo(info)
	if rss, err = strconv.ParseInt(fields["used_memory_rss"], 10, 64); err != nil {
		return 0, 0, 0, fmt.Errorf("INFO memory: used_memory_rss: %w", err)
	}
	if used, err = strconv.ParseInt(fields["used_memory"], 10, 64); err != nil {
		return 0, 0, 0, fmt.Errorf("INFO memory: used_memory: %w", err)
	}
	n, err := r.do("DBSIZE")
	if err != nil {
		return 0, 0, 0, err
	}
	keys, err = strconv.ParseInt(n, 10, 64)
	return rss, used, keys, err
}

func writeCommand(w *bufio.Writer, args ...string) {
	fmt.Fprintf(w, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(w, "$%d\r\n%s\r\n", len(a), a)
	}
}

// readReply reads one RESP reply of the kinds these commands get: +status,
// -error, :integer, $bulk.
func readReply(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return "", errors.New("empty RESP line")
	}
	switch line[0] {
	case '+', ':':
		return line[1:], nil
	case '-':
		return "", errors.New("redis: " + line[1:])
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return "", fmt.Errorf("RESP bulk length %q", line)
		}
		if n < 0 {
			return "", nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	}
	return "", fmt.Errorf("unexpected RESP reply %q", line)
}

// parseInfo reads INFO's "name:value" lines.
func parseInfo(s string) map[string]string {
	m := map[string]string{}
	for line := range strings.Lines(s) {
		line = strings.TrimSpace(line)
		if k, v, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(line, "#") {
			m[k] = v
		}
	}
	return m
}

// redisResult is one redis-benchmark test.
type redisResult struct {
	OpsPerSec float64 `json:"ops_per_sec"`
	P50Ms     float64 `json:"p50_ms"`
	P99Ms     float64 `json:"p99_ms"`
	Requests  int     `json:"requests"`
}

// redisBench runs redis-benchmark for one test (get or set) at one point:
// size-byte values over keys keys, clients connections, pipeline commands
// per round trip (1 = none), n requests.
func redisBench(ctx context.Context, exe string, port int, test string, size, keys, clients, pipeline, n int) (redisResult, error) {
	args := []string{"-h", "127.0.0.1", "-p", strconv.Itoa(port), "-t", test, "-d", strconv.Itoa(size),
		"-r", strconv.Itoa(keys), "-c", strconv.Itoa(clients), "-n", strconv.Itoa(n), "-P", strconv.Itoa(pipeline), "--csv"}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return redisResult{}, fmt.Errorf("redis-benchmark %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	res, err := parseRedisCSV(out, test)
	res.Requests = n
	return res, err
}

// parseRedisCSV reads redis-benchmark --csv output (Redis 7: a header
// "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms",
// "p95_latency_ms","p99_latency_ms","max_latency_ms", then a row per test)
// and returns test's row.
func parseRedisCSV(out []byte, test string) (redisResult, error) {
	recs, err := csv.NewReader(bytes.NewReader(out)).ReadAll()
	if err != nil {
		return redisResult{}, fmt.Errorf("redis-benchmark csv: %w", err)
	}
	if len(recs) < 2 {
		return redisResult{}, fmt.Errorf("redis-benchmark csv: no rows in %q", out)
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	for _, need := range []string{"test", "rps", "p50_latency_ms", "p99_latency_ms"} {
		if _, ok := col[need]; !ok {
			return redisResult{}, fmt.Errorf("redis-benchmark csv: no %q column in %q", need, recs[0])
		}
	}
	for _, rec := range recs[1:] {
		if !strings.EqualFold(rec[col["test"]], test) {
			continue
		}
		var res redisResult
		var errs []error
		num := func(name string) float64 {
			v, err := strconv.ParseFloat(rec[col[name]], 64)
			errs = append(errs, err)
			return v
		}
		res.OpsPerSec, res.P50Ms, res.P99Ms = num("rps"), num("p50_latency_ms"), num("p99_latency_ms")
		return res, errors.Join(errs...)
	}
	return redisResult{}, fmt.Errorf("redis-benchmark csv: no %s row in %q", test, out)
}

// redisTarget is Redis as a bench/harness target: the same Go workers,
// histograms and rounds as Roost and the echo, interleaved with them. Each
// request takes a connection of its own from a pool as big as the workers
// (RESP without pipelining answers one request per connection at a time,
// as redis-benchmark's -c clients do), and the reply is read into the
// connection's buffer and dropped. The run's key names (keyPrefix and a
// number) are mapped to the redis-benchmark keys loaded before.
type redisTarget struct {
	conns chan *redisConn
}

type redisConn struct {
	c   net.Conn
	w   *bufio.Writer
	r   *bufio.Reader
	key []byte
}

func openRedisTarget(addr string, conns int) (*redisTarget, error) {
	t := &redisTarget{conns: make(chan *redisConn, conns)}
	for range conns {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			t.Close()
			return nil, err
		}
		t.conns <- &redisConn{c: c, w: bufio.NewWriterSize(c, 1<<16), r: bufio.NewReaderSize(c, 1<<16)}
	}
	return t, nil
}

// redisKeyOf maps keyPrefix<n> to key:<n, 12 digits> into buf.
func redisKeyOf(buf []byte, key string) []byte {
	n := strings.TrimPrefix(key, keyPrefix)
	buf = append(buf[:0], "key:"...)
	for range 12 - len(n) {
		buf = append(buf, '0')
	}
	return append(buf, n...)
}

func (t *redisTarget) do(key string, value []byte, get bool) error {
	c := <-t.conns
	defer func() { t.conns <- c }()
	c.key = redisKeyOf(c.key, key)
	_ = c.c.SetDeadline(time.Now().Add(10 * time.Second))
	if get {
		fmt.Fprintf(c.w, "*2\r\n$3\r\nGET\r\n$%d\r\n", len(c.key))
	} else {
		fmt.Fprintf(c.w, "*3\r\n$3\r\nSET\r\n$%d\r\n", len(c.key))
	}
	c.w.Write(c.key)
	c.w.WriteString("\r\n")
	if !get {
		fmt.Fprintf(c.w, "$%d\r\n", len(value))
		c.w.Write(value)
		c.w.WriteString("\r\n")
	}
	if err := c.w.Flush(); err != nil {
		return err
	}
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		return err
	}
	switch {
	case len(line) < 3:
		return fmt.Errorf("redis: reply %q", line)
	case line[0] == '-':
		return fmt.Errorf("redis: %s", bytes.TrimSpace(line[1:]))
	case get && line[0] == '$':
		n, err := strconv.Atoi(string(bytes.TrimSpace(line[1:])))
		if err != nil {
			return fmt.Errorf("redis: bulk length %q", line)
		}
		if n < 0 {
			return errors.New("redis: get of a key not loaded")
		}
		_, err = c.r.Discard(n + 2)
		return err
	case !get && line[0] == '+':
		return nil
	}
	return fmt.Errorf("redis: reply %q", line)
}

func (t *redisTarget) Get(key string) error               { return t.do(key, nil, true) }
func (t *redisTarget) Set(key string, value []byte) error { return t.do(key, value, false) }

func (t *redisTarget) Close() {
	for {
		select {
		case c := <-t.conns:
			c.c.Close()
		default:
			return
		}
	}
}
