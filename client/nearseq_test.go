package client

import "testing"

func TestStepChange(t *testing.T) {
	at := func(term, seq uint64) seqState { return seqState{synced: true, term: term, seq: seq} }
	tests := []struct {
		name      string
		st        seqState
		term, seq uint64
		want      seqState
		verdict   seqVerdict
	}{
		{"first change is a baseline", seqState{}, 5, 17, at(5, 17), seqSynced},
		{"next seq", at(5, 17), 5, 18, at(5, 18), seqOK},
		{"gathered changes read one by one", at(5, 18), 5, 19, at(5, 19), seqOK},
		{"a seq skipped: a lost message", at(5, 17), 5, 19, at(5, 19), seqGap},
		{"many skipped", at(5, 17), 5, 1000, at(5, 1000), seqGap},
		{"a redelivered seq", at(5, 17), 5, 17, at(5, 17), seqOK},
		{"an older seq", at(5, 17), 5, 3, at(5, 17), seqOK},
		{"a new term", at(5, 17), 9, 1, at(9, 1), seqNewTerm},
		{"a new term, its first changes lost", at(5, 17), 9, 4, at(9, 4), seqNewTerm},
		{"a deposed primary's change", at(9, 2), 5, 18, at(9, 2), seqOldTerm},
		{"unsequenced change while synced", at(5, 17), 0, 0, at(5, 17), seqIgnored},
		{"unsequenced change unsynced", seqState{}, 0, 0, seqState{}, seqIgnored},
	}
	for _, tt := range tests {
		got, v := stepChange(tt.st, tt.term, tt.seq)
		if got != tt.want || v != tt.verdict {
			t.Errorf("%s: stepChange(%+v, %d, %d) = %+v, %v; want %+v, %v", tt.name, tt.st, tt.term, tt.seq, got, v, tt.want, tt.verdict)
		}
	}
}

func TestStepHeads(t *testing.T) {
	at := func(term, seq uint64) seqState { return seqState{synced: true, term: term, seq: seq} }
	tests := []struct {
		name      string
		st        seqState
		term, seq uint64
		want      seqState
		verdict   seqVerdict
	}{
		{"baseline from a beacon", seqState{}, 5, 17, at(5, 17), seqSynced},
		{"baseline of a partition never written", seqState{}, 5, 0, at(5, 0), seqSynced},
		{"quiet partition, nothing missed", at(5, 17), 5, 17, at(5, 17), seqOK},
		{"beacon behind what was read (changes after its heads)", at(5, 17), 5, 12, at(5, 17), seqOK},
		{"last message lost, then silence", at(5, 17), 5, 18, at(5, 18), seqGap},
		{"new term with no write yet", at(5, 17), 9, 0, at(9, 0), seqNewTerm},
		{"a deposed primary's beacon", at(9, 3), 5, 40, at(9, 3), seqIgnored},
	}
	for _, tt := range tests {
		got, v := stepHeads(tt.st, tt.term, tt.seq)
		if got != tt.want || v != tt.verdict {
			t.Errorf("%s: stepHeads(%+v, %d, %d) = %+v, %v; want %+v, %v", tt.name, tt.st, tt.term, tt.seq, got, v, tt.want, tt.verdict)
		}
	}
	if st := stepReconnect(at(5, 17)); st.synced {
		t.Errorf("after a reconnect the partition is still synced: %+v", st)
	}
	for _, v := range []seqVerdict{seqGap, seqNewTerm, seqOldTerm} {
		if !v.drops() {
			t.Errorf("%v does not drop the partition's entries", v)
		}
	}
	for _, v := range []seqVerdict{seqOK, seqSynced, seqIgnored} {
		if v.drops() {
			t.Errorf("%v drops the partition's entries", v)
		}
	}
}
