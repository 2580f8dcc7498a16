// Command roost is the Roost binary: `roost serve` runs a node, and the
// other commands talk to a running node over NATS.
//
//	roost serve --max-memory 256MiB &     # a single node on 127.0.0.1:4222
//	roost set greeting hello              # prints the new version
//	roost get greeting                    # prints hello, nothing else
//	roost keys                            # one key per line
//	roost status                          # who the node is and its figures
//
// Every flag of serve can also come from the environment as ROOST_<FLAG>
// (ROOST_MAX_MEMORY=1GiB) or from the YAML file named by --config, whose keys
// are flag names; the command line beats the environment, which beats the
// file. The client commands read ROOST_SERVER, ROOST_TOKEN, ROOST_PREFIX and
// ROOST_TIMEOUT.
//
// Exit codes: 0 success; 1 the operation failed (key not found, CAS
// mismatch, cannot connect, a feature not supported yet); 2 usage error (an
// unknown command or flag, a wrong argument count, a bad flag value from the
// command line, the environment or the config file). Errors are one line on
// stderr starting with "roost: "; usage errors add a hint to --help.
package main
