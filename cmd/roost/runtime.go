package main

import (
	"strings"

	"github.com/spf13/pflag"

	"github.com/roostkv/roost/node"
)

// runtimeFlags are the serve flags of the settings a runtime config rule
// may change (node.Config.Sources), by setting name.
var runtimeFlags = map[string]string{
	node.SettingMaxMemory:   "max-memory",
	node.SettingLogLevel:    "log-level",
	node.SettingTags:        "tags",
	node.SettingLoadTTL:     "load-ttl",
	node.SettingNegativeTTL: "negative-ttl",
}

// changedFlags returns the flags set on the command line (before
// bindEnvAndConfig sets more).
func changedFlags(fs *pflag.FlagSet) map[string]bool {
	out := map[string]bool{}
	fs.Visit(func(f *pflag.Flag) { out[f.Name] = true })
	return out
}

// settingSources names where each runtime setting's value came from, for
// GET /v1/roost/config: "flag", "env ROOST_…", "file <path>" or "default".
func settingSources(fs *pflag.FlagSet, onCommandLine map[string]bool, lookupEnv lookupEnvFunc) map[string]string {
	out := map[string]string{}
	for setting, name := range runtimeFlags {
		f := fs.Lookup(name)
		switch {
		case f == nil || !f.Changed:
			out[setting] = "default"
		case onCommandLine[name]:
			out[setting] = "flag"
		default:
			if v, ok := lookupEnv(envName(name)); ok && strings.TrimSpace(v) != "" {
				out[setting] = "env " + envName(name)
			} else if c := fs.Lookup(configFlag); c != nil {
				out[setting] = "file " + c.Value.String()
			}
		}
	}
	return out
}
