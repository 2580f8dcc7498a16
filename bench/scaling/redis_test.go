package main

import (
	"context"
	"os/exec"
	"testing"
	"time"
)

// TestRedis runs the Redis side against a real redis-server (Debian's
// redis-server package); without one it is skipped.
func TestRedis(t *testing.T) {
	exe, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("no redis-server: apt-get install -y redis-server redis-tools")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := startRedis(ctx, exe)
	if err != nil {
		t.Fatal(err)
	}
	defer r.stop()
	if err := r.load(ctx, 2500, 100); err != nil {
		t.Fatal(err)
	}
	if _, _, keys, err := r.memory(); err != nil || keys != 2500 {
		t.Fatalf("memory: %d keys, %v; want 2500", keys, err)
	}
	tgt, err := openRedisTarget(r.addr, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer tgt.Close()
	if err := tgt.Get(keyPrefix + "2499"); err != nil {
		t.Errorf("get of a loaded key: %v", err)
	}
	if err := tgt.Get(keyPrefix + "2500"); err == nil {
		t.Error("get of a key not loaded succeeded")
	}
	if err := tgt.Set(keyPrefix+"2500", []byte("v")); err != nil {
		t.Errorf("set: %v", err)
	}
	if err := tgt.Get(keyPrefix + "2500"); err != nil {
		t.Errorf("get after set: %v", err)
	}
	if rep, err := r.do("GET", redisKey(2500)); err != nil || rep != "v" {
		t.Errorf("GET %s = %q, %v; want v", redisKey(2500), rep, err)
	}
	if b, err := exec.LookPath("redis-benchmark"); err == nil {
		res, err := redisBench(ctx, b, r.port, "get", 100, 2500, 4, 1, 2000)
		if err != nil || res.OpsPerSec <= 0 {
			t.Errorf("redis-benchmark: %+v, %v", res, err)
		}
	}
	r.stop()
	select {
	case <-r.c.done:
	default:
		t.Error("redis-server still running after stop")
	}
}
