package replicator

import (
	"encoding/binary"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/roostkv/roost/bus/wire"
)

// Log envelopes: what one drain of the shell logs for one peer travels as
// one message, whatever the number of partitions, and a replica
// acknowledges what it applied in one drain as one message per primary
// (as etcd raft batches its MsgApps and acks per Ready). The core stays per
// partition: it emits a publish effect per partition's batch, naming the
// replicas; the shell packs those into a per-peer outbox and flushes it at
// the end of the drain: a client batch (Pending.Wait, Flush), or any other
// step (Replicator.step). No timer: an idle node adds no latency.
//
// An envelope, on "<prefix>.n.<id>.log":
//
//	version byte (1)
//	then per partition's batch: flags byte (1 = ack wanted),
//	uvarint length, the batch's msgpack (Batch, as on the log subject)
//
// An ack set, on "<prefix>.n.<id>.ack": tagAcks, then the msgpack of
// ackSet.
//
// Mixed versions: a node says in its heartbeat claims that it takes
// envelopes (claims.Env). A primary packs a batch into envelopes only when
// every replica it is bound for said so; otherwise it publishes the batch
// on the partition's log subject as before, which every node still
// follows. A replica acknowledges a batch that came on the log subject
// with one Ack, as before.

// envelopeV1 is the first byte of an envelope: its format.
const envelopeV1 byte = 1

// frameAck flags a batch that asks for an ack (ack=all).
const frameAck byte = 1

// appendFrame appends one partition's encoded batch to env.
func appendFrame(env []byte, ack bool, batch []byte) []byte {
	if len(env) == 0 {
		env = append(env, envelopeV1)
	}
	var flags byte
	if ack {
		flags = frameAck
	}
	env = append(env, flags)
	env = binary.AppendUvarint(env, uint64(len(batch)))
	return append(env, batch...)
}

// readEnvelope calls fn with each batch of env, in order.
func readEnvelope(env []byte, fn func(ack bool, batch []byte)) error {
	if len(env) == 0 || env[0] != envelopeV1 {
		return errMalformed
	}
	env = env[1:]
	for len(env) > 0 {
		flags := env[0]
		n, k := binary.Uvarint(env[1:])
		if k <= 0 || n > uint64(len(env)-1-k) {
			return errMalformed
		}
		body := env[1+k : 1+k+int(n)]
		env = env[1+k+int(n):]
		fn(flags&frameAck != 0, body)
	}
	return nil
}

// ackSet is a replica's acks of one drain, to one primary.
type ackSet struct {
	Acks []Ack `msgpack:"a"`
}

// outbox holds the envelopes being filled, one per peer. Batches are added
// under their partition's lock, so a partition's batches are queued in log
// order; Flush sends under the outbox's lock, so they leave in that order.
type outbox struct {
	queued  atomic.Int32           // peers with bytes waiting: Flush's fast path
	subject func(id string) string // a peer's envelope subject (Subjects.NodeLog), set once
	mu      sync.Mutex
	peers   map[string]*peerBox // by node ID
	dirty   []*peerBox          // those with bytes waiting
	enc     []byte              // addBatch's encoding, reused
}

type peerBox struct {
	subject string
	buf     []byte
}

// addBatch queues batch for each node ID of ids: encoded once, into a
// buffer the outbox reuses, and copied into each peer's envelope.
func (o *outbox) addBatch(ids []string, ack bool, batch *Batch) {
	o.mu.Lock()
	o.enc = batch.AppendMsgpack(o.enc[:0])
	o.addLocked(ids, ack, o.enc)
	if cap(o.enc) > 64<<10 {
		o.enc = nil // a large batch's buffer is not kept
	}
	o.mu.Unlock()
}

// addLocked queues an encoded batch for each node ID of ids. o.mu is held.
func (o *outbox) addLocked(ids []string, ack bool, batch []byte) {
	if o.peers == nil {
		o.peers = map[string]*peerBox{}
	}
	for _, id := range ids {
		pb := o.peers[id]
		if pb == nil {
			pb = &peerBox{subject: o.subject(id)}
			o.peers[id] = pb
		}
		if len(pb.buf) == 0 {
			o.dirty = append(o.dirty, pb)
		}
		pb.buf = appendFrame(pb.buf, ack, batch)
	}
	o.queued.Store(int32(len(o.dirty)))
}

// flush sends every envelope waiting, one message per peer.
func (o *outbox) flush(conn *nats.Conn) {
	if o.queued.Load() == 0 {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, pb := range o.dirty {
		_ = conn.Publish(pb.subject, pb.buf) // the connection copies it
		if cap(pb.buf) > 64<<10 {
			pb.buf = nil // a large batch's buffer is not kept
		} else {
			pb.buf = pb.buf[:0]
		}
	}
	clear(o.dirty)
	o.dirty = o.dirty[:0]
	o.queued.Store(0)
}

// ackBox gathers the acks a replica owes while it applies an envelope, by
// primary. Only the envelope subscription's goroutine touches it.
type ackBox struct {
	by    map[string][]Ack
	order []string
}

func (a *ackBox) add(to string, ack Ack) {
	if a.by == nil {
		a.by = map[string][]Ack{}
	}
	if len(a.by[to]) == 0 {
		a.order = append(a.order, to)
	}
	a.by[to] = append(a.by[to], ack)
}

// Flush sends the log batches the writes submitted so far left for the
// replicas: Pending.Wait calls it, so a caller that submits several
// partitions' writes and then waits sends each replica one message.
func (r *Replicator) Flush() { r.out.flush(r.conn) }

// queueBatch packs a batch into the envelopes of its replicas, if each of
// them takes envelopes: false when it must go on the log subject.
func (r *Replicator) queueBatch(to []string, ack bool, b *Batch) bool {
	if len(to) == 0 {
		return false
	}
	ids, env := r.ids.Load(), r.peerEnv.Load()
	if ids == nil || env == nil {
		return false
	}
	var buf [4]string
	dst := buf[:0]
	for _, name := range to {
		id := (*ids)[name]
		if id == "" || !(*env)[id] {
			return false
		}
		dst = append(dst, id)
	}
	r.out.addBatch(dst, ack, b)
	return true
}

// onEnvelope takes an envelope of log batches from a primary, on the
// subscription's goroutine, and sends the acks its batches owe as one
// message. (Holding them until the subscription has nothing more queued
// would gather the acks of several envelopes, but on a loaded machine a
// replica's goroutine that is not scheduled then holds up every write it
// owes an ack: measured slower, BENCHMARKS.md.)
func (r *Replicator) onEnvelope() nats.MsgHandler {
	var acks ackBox
	return func(msg *nats.Msg) {
		err := readEnvelope(msg.Data, func(ack bool, data []byte) {
			// A new Batch per frame: decoding into the previous
			// frame's entries would keep the fields the encoding
			// leaves out when zero (deleted, expiry, flags, value),
			// as the decoder reuses a slice's elements
			// (TestEnvelopeFramesKeepTheirOwnFields).
			var b Batch
			if b.decodeView(data) != nil || b.P < 0 || b.P >= len(r.parts) {
				return
			}
			pt := r.parts[b.P]
			pt.mu.Lock()
			_ = pt.c.step(LogBatch{Batch: b, AckWanted: ack})
			r.perform(pt, &acks)
			pt.mu.Unlock()
			r.lag.recordBatch(b.Entries, time.Now())
		})
		if err != nil {
			r.log.Debug("malformed log envelope", "err", err)
		}
		r.sendAcks(&acks)
	}
}

// sendAcks sends each primary the acks gathered for it, as one message.
func (r *Replicator) sendAcks(a *ackBox) {
	for _, to := range a.order {
		set := ackSet{Acks: a.by[to]}
		if id := r.idOf(to); id != "" {
			if body, err := wire.Marshal(&set); err == nil {
				_ = r.conn.Publish(r.cfg.Subjects.NodeAck(id), append([]byte{tagAcks}, body...))
			}
		}
		a.by[to] = a.by[to][:0]
	}
	a.order = a.order[:0]
}

// decodeAcks reads an ack set.
func decodeAcks(data []byte) ([]Ack, error) {
	if len(data) < 2 || data[0] != tagAcks {
		return nil, errMalformed
	}
	var set ackSet
	if err := wire.Unmarshal(data[1:], &set); err != nil {
		return nil, err
	}
	return set.Acks, nil
}

// setPeerEnv records which peers take envelopes, from their claims.
func (r *Replicator) setPeerEnv(env map[string]bool) {
	if cur := r.peerEnv.Load(); cur != nil && maps.Equal(*cur, env) {
		return
	}
	r.peerEnv.Store(&env)
}
