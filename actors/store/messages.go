package store

// message is the closed set of requests the store's loop answers.
type message interface{ isMessage() }

// getRequest reads a key through the loop (see Store.AskGet).
type getRequest struct {
	Key   string
	Reply chan<- getResponse
}

// getResponse answers a getRequest.
type getResponse struct {
	Entry Entry
	Err   error
}

// statsRequest asks for the counters.
type statsRequest struct {
	Reply chan<- Stats
}

// sweepRequest asks for a sweep now; the reply is the number of entries removed.
type sweepRequest struct {
	Reply chan<- int
}

func (getRequest) isMessage()   {}
func (statsRequest) isMessage() {}
func (sweepRequest) isMessage() {}
