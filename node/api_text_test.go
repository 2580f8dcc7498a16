package node

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// TestTextGetServesWhileALoadWaits: a text get runs on its endpoint's
// subscription goroutine unless it may wait for a loader. It now asks
// whether a loader listens only once the store has missed (lookupHere), so
// a miss that waits for a slow loader must still leave that goroutine:
// a get of a present key is answered meanwhile, and the waiting get gets
// the loaded value once the loader answers.
func TestTextGetServesWhileALoadWaits(t *testing.T) {
	n := startTestNode(t, 1) // key0
	nc, err := nats.Connect(n.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	asked, release := make(chan struct{}), make(chan struct{})
	if _, err := nc.Subscribe(n.subj.Load("slow.>"), func(m *nats.Msg) {
		close(asked)
		<-release
		reply := nats.NewMsg(m.Reply)
		reply.Data = []byte("loaded")
		reply.Header.Set(hdrFlags, "9")
		_ = m.RespondMsg(reply)
	}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	type result struct {
		m   *nats.Msg
		err error
	}
	loaded := make(chan result, 1)
	go func() {
		m, err := nc.Request(n.subj.Text("get", "slow.k"), nil, 5*time.Second)
		loaded <- result{m, err}
	}()
	select {
	case <-asked:
	case <-time.After(5 * time.Second):
		t.Fatal("the get's miss never asked the loader")
	}
	// The loader holds its answer (for less than --load-timeout, 2 s):
	// the get endpoint must answer another get meanwhile.
	m, err := nc.Request(n.subj.Text("get", "key0"), nil, time.Second)
	close(release)
	if err != nil {
		t.Fatalf("get of a present key while a load waits: %v (the load held the get endpoint's goroutine)", err)
	}
	if len(m.Data) != 100 || m.Header.Get(hdrVersion) == "" {
		t.Fatalf("get of key0: %d bytes, headers %v", len(m.Data), m.Header)
	}
	r := <-loaded
	if m = r.m; r.err != nil {
		t.Fatalf("get of a key the loader loads: %v", r.err)
	}
	if string(m.Data) != "loaded" || m.Header.Get(hdrFlags) != "9" || m.Header.Get(hdrVersion) == "" {
		t.Fatalf("loaded get: %q, headers %v", m.Data, m.Header)
	}
	// Once stored, it is a hit, answered in place.
	if m, err := nc.Request(n.subj.Text("get", "slow.k"), nil, time.Second); err != nil || string(m.Data) != "loaded" {
		t.Fatalf("get after the load: %v %v", m, err)
	}
}

// TestTextReplyNumbers: a reply's Roost-Version and Roost-Flags are written
// into the reused reply's own digit buffers (respondText): each reply must
// carry its own numbers, long after short and short after long, and the
// get's flags must not leak into a write's reply.
func TestTextReplyNumbers(t *testing.T) {
	n := startTestNode(t, 0)
	nc, err := nats.Connect(n.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := func(op, key string, data []byte, hdr ...string) *nats.Msg {
		t.Helper()
		msg := nats.NewMsg(n.subj.Text(op, key))
		msg.Data = data
		for i := 0; i < len(hdr); i += 2 {
			msg.Header.Set(hdr[i], hdr[i+1])
		}
		m, err := nc.RequestMsgWithContext(ctx, msg)
		if err != nil {
			t.Fatal(err)
		}
		if code := m.Header.Get("Nats-Service-Error-Code"); code != "" {
			t.Fatalf("%s %s: %s %s", op, key, code, m.Header.Get("Nats-Service-Error"))
		}
		return m
	}
	const bigFlags = "18446744073709551615" // the largest uint64: 20 digits
	versions := map[string]string{}
	for i := range 30 {
		key, flags := "small", "0"
		if i%2 == 1 {
			key, flags = "big", bigFlags
		}
		set := req("set", key, []byte(key), hdrFlags, flags)
		if len(set.Header) != 1 || set.Header.Get(hdrVersion) == "" {
			t.Fatalf("set reply headers %v, want Roost-Version alone", set.Header)
		}
		versions[key] = set.Header.Get(hdrVersion)
		for _, k := range []string{"small", "big"} {
			if versions[k] == "" {
				continue
			}
			get := req("get", k, nil)
			wantFlags := "0"
			if k == "big" {
				wantFlags = bigFlags
			}
			if get.Header.Get(hdrVersion) != versions[k] || get.Header.Get(hdrFlags) != wantFlags || string(get.Data) != k {
				t.Fatalf("round %d: get %s: version %q flags %q value %q, want %s %s %s", i, k, get.Header.Get(hdrVersion), get.Header.Get(hdrFlags), get.Data, versions[k], wantFlags, k)
			}
		}
	}
	if v, err := strconv.ParseUint(versions["big"], 10, 64); err != nil || v == 0 {
		t.Fatalf("version %q: %v", versions["big"], err)
	}
}

// TestTextGetValueBuffers: a get served in place reads the value into the
// reused reply's buffer (serveTextGet), which grows up to maxReplyBuffer
// and is kept; each reply must carry exactly its own value, shorter after
// longer, empty, and over the buffer's bound.
func TestTextGetValueBuffers(t *testing.T) {
	n := startTestNode(t, 0)
	nc, err := nats.Connect(n.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	sizes := map[string]int{"empty": 0, "small": 3, "mid": 4000, "bound": maxReplyBuffer, "over": maxReplyBuffer + 1000}
	values := map[string][]byte{}
	for key, size := range sizes {
		v := make([]byte, size)
		for i := range v {
			v[i] = key[i%len(key)]
		}
		values[key] = v
		if m, err := nc.Request(n.subj.Text("set", key), v, 5*time.Second); err != nil || m.Header.Get("Nats-Service-Error-Code") != "" {
			t.Fatalf("set %s: %v %v", key, err, m.Header)
		}
	}
	order := []string{"mid", "small", "empty", "over", "small", "bound", "mid", "empty", "over", "small"}
	for round := range 5 {
		for _, key := range order {
			m, err := nc.Request(n.subj.Text("get", key), nil, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if code := m.Header.Get("Nats-Service-Error-Code"); code != "" || string(m.Data) != string(values[key]) {
				t.Fatalf("round %d: get %s: %d bytes (error %q), want its %d", round, key, len(m.Data), code, len(values[key]))
			}
		}
	}
}

// TestTextWritesConcurrently: text sets, each with its own value, flags and
// ack mode, from many requesters at once: ack=all ones run on goroutines of
// their own beside the endpoint's, all through writeOne's reused memory
// (writeScratch). Every reply must carry its own write's version, and the
// store must hold each key's own last value and flags (run with -race).
func TestTextWritesConcurrently(t *testing.T) {
	n := startTestNode(t, 0)
	nc, err := nats.Connect(n.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	const writers, writes = 8, 60
	errs := make(chan error, writers)
	for w := range writers {
		go func() {
			errs <- func() error {
				for i := range writes {
					key := "w" + strconv.Itoa(w) + "." + strconv.Itoa(i%5)
					m := nats.NewMsg(n.subj.Text("set", key))
					m.Data = []byte(key + "=" + strconv.Itoa(i))
					m.Header.Set(hdrFlags, strconv.Itoa(w*1000+i))
					if i%2 == 1 {
						m.Header.Set(hdrAck, "all")
					}
					reply, err := nc.RequestMsg(m, 5*time.Second)
					if err != nil {
						return err
					}
					if code := reply.Header.Get("Nats-Service-Error-Code"); code != "" {
						return &apiError{msg: key + ": " + code + " " + reply.Header.Get("Nats-Service-Error")}
					}
					e, err := n.store.Get(key) // no other writer writes key
					if err != nil {
						return err
					}
					if v := reply.Header.Get(hdrVersion); v != strconv.FormatUint(e.Version, 10) {
						return &apiError{msg: key + ": reply's version " + v + ", stored " + strconv.FormatUint(e.Version, 10)}
					}
					if string(e.Value) != string(m.Data) || e.Flags != uint64(w*1000+i) {
						return &apiError{msg: key + ": stored " + string(e.Value) + " flags " + strconv.FormatUint(e.Flags, 10) + ", want " + string(m.Data)}
					}
				}
				return nil
			}()
		}()
	}
	for range writers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
