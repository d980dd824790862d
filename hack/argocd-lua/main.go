// Command argocd-lua runs Argo CD resource-customization tests (health_test.yaml, actions/action_test.yaml) the
// way Argo CD evaluates the scripts, with gopher-lua v1.1.2, against two sources of each script:
//
//   - built-in: the files resource_customizations/<group>/<Kind>/health.lua, actions/discovery.lua,
//     actions/<action>/action.lua, evaluated as Argo CD evaluates its built-in checks (health and discovery with
//     every standard library, actions with the restricted set, as argo-cd's own tests do);
//   - argocd-cm: the scripts embedded in an argocd-cm ConfigMap (resource.customizations.health.<group>_<Kind>,
//     resource.customizations.actions.<group>_<Kind>), evaluated with the restricted libraries unless
//     resource.customizations.useOpenLibs.<group>_<Kind> is "true", as Argo CD does for them.
//
// Usage: argocd-lua -dir <resource_customizations> [-configmap <argocd-cm.yaml>] [-now <RFC 3339>]
//
// Prints one JSON object per evaluation on stdout, then a line "N passed, N failed"; exits 1 if any failed.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

type healthStatus struct {
	Status  string `json:"status"`
	Message string `json:"message,omitempty"`
}

type healthTests struct {
	Tests []struct {
		InputPath    string       `json:"inputPath"`
		HealthStatus healthStatus `json:"healthStatus"`
	} `json:"tests"`
}

type resourceAction struct {
	Name        string `json:"name"`
	Disabled    bool   `json:"disabled,omitempty"`
	IconClass   string `json:"iconClass,omitempty"`
	DisplayName string `json:"displayName,omitempty"`
}

type actionTests struct {
	DiscoveryTests []struct {
		InputPath string           `json:"inputPath"`
		Result    []resourceAction `json:"result"`
	} `json:"discoveryTests"`
	ActionTests []struct {
		Action             string `json:"action"`
		InputPath          string `json:"inputPath"`
		ExpectedOutputPath string `json:"expectedOutputPath"`
	} `json:"actionTests"`
}

// result is one evaluation, printed as a JSON line.
type result struct {
	Kind     string `json:"kind"`   // health, discovery, action
	Script   string `json:"script"` // <group>/<Kind>[/actions/<action>]
	Source   string `json:"source"` // built-in, argocd-cm
	OpenLibs bool   `json:"openLibs"`
	Input    string `json:"input"`
	OK       bool   `json:"ok"`
	Expected any    `json:"expected,omitempty"`
	Actual   any    `json:"actual,omitempty"`
	Error    string `json:"error,omitempty"`
}

// scriptSource is where the scripts of one <group>/<Kind> come from.
type scriptSource struct {
	name      string
	health    string
	discovery string
	actions   map[string]string
	found     bool
	// openLibs for health and discovery; actions run with open libraries only when scriptOpenLibs is set.
	openLibs       bool
	actionOpenLibs bool
}

func main() {
	dir := flag.String("dir", "", "the resource_customizations directory")
	cmPath := flag.String("configmap", "", "an argocd-cm ConfigMap whose scripts are tested too")
	nowFlag := flag.String("now", "", "the clock of os.time()/os.date() in action tests (RFC 3339)")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "usage: argocd-lua -dir <resource_customizations> [-configmap argocd-cm.yaml] [-now RFC3339]")
		os.Exit(2)
	}
	var now *time.Time
	if *nowFlag != "" {
		t, err := time.Parse(time.RFC3339, *nowFlag)
		if err != nil {
			fatal("-now: %v", err)
		}
		now = &t
	}
	var cm map[string]string
	if *cmPath != "" {
		var err error
		if cm, err = readConfigMap(*cmPath); err != nil {
			fatal("%v", err)
		}
	}

	var results []result
	err := filepath.WalkDir(*dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(*dir, path)
		parts := strings.Split(filepath.ToSlash(rel), "/")
		switch {
		case len(parts) == 3 && parts[2] == "health_test.yaml":
			results = append(results, runHealthTests(*dir, parts[0], parts[1], cm)...)
		case len(parts) == 4 && parts[2] == "actions" && parts[3] == "action_test.yaml":
			results = append(results, runActionTests(*dir, parts[0], parts[1], cm, now)...)
		}
		return nil
	})
	if err != nil {
		fatal("walking %s: %v", *dir, err)
	}
	failed := 0
	out := json.NewEncoder(os.Stdout)
	for _, r := range results {
		if !r.OK {
			failed++
		}
		_ = out.Encode(r)
	}
	fmt.Printf("%d passed, %d failed\n", len(results)-failed, failed)
	if failed > 0 || len(results) == 0 {
		os.Exit(1)
	}
}

func fatal(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "argocd-lua: "+format+"\n", args...)
	os.Exit(2)
}

func readYAML(path string, into any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := yaml.Unmarshal(b, into); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

func readConfigMap(path string) (map[string]string, error) {
	var cm struct {
		Kind string            `json:"kind"`
		Data map[string]string `json:"data"`
	}
	if err := readYAML(path, &cm); err != nil {
		return nil, err
	}
	if cm.Kind != "ConfigMap" || len(cm.Data) == 0 {
		return nil, fmt.Errorf("%s: not a ConfigMap with data", path)
	}
	return cm.Data, nil
}

// sources returns the built-in files of <group>/<Kind> and, with a ConfigMap, its argocd-cm keys.
func sources(dir, group, kind string, cm map[string]string) []scriptSource {
	base := filepath.Join(dir, group, kind)
	builtIn := scriptSource{name: "built-in", actions: map[string]string{}, found: true, openLibs: true}
	builtIn.health = readOptional(filepath.Join(base, "health.lua"))
	builtIn.discovery = readOptional(filepath.Join(base, "actions", "discovery.lua"))
	if entries, err := os.ReadDir(filepath.Join(base, "actions")); err == nil {
		for _, e := range entries {
			if s := readOptional(filepath.Join(base, "actions", e.Name(), "action.lua")); e.IsDir() && s != "" {
				builtIn.actions[e.Name()] = s
			}
		}
	}
	out := []scriptSource{builtIn}
	if cm == nil {
		return out
	}
	key := group + "_" + kind
	open := cm["resource.customizations.useOpenLibs."+key] == "true"
	fromCM := scriptSource{name: "argocd-cm", actions: map[string]string{}, openLibs: open, actionOpenLibs: open}
	if h, ok := cm["resource.customizations.health."+key]; ok {
		fromCM.health, fromCM.found = h, true
	}
	if a, ok := cm["resource.customizations.actions."+key]; ok {
		var defs struct {
			Discovery   string `json:"discovery.lua"`
			Definitions []struct {
				Name      string `json:"name"`
				ActionLua string `json:"action.lua"`
			} `json:"definitions"`
		}
		if err := yaml.Unmarshal([]byte(a), &defs); err == nil {
			fromCM.discovery, fromCM.found = defs.Discovery, true
			for _, d := range defs.Definitions {
				fromCM.actions[d.Name] = d.ActionLua
			}
		}
	}
	return append(out, fromCM)
}

func readOptional(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return string(b)
}

func readObject(path string) (map[string]any, error) {
	obj := map[string]any{}
	if err := readYAML(path, &obj); err != nil {
		return nil, err
	}
	return obj, nil
}

func runHealthTests(dir, group, kind string, cm map[string]string) []result {
	script := group + "/" + kind
	var tests healthTests
	if err := readYAML(filepath.Join(dir, group, kind, "health_test.yaml"), &tests); err != nil {
		return []result{{Kind: "health", Script: script, Error: err.Error()}}
	}
	var out []result
	for _, src := range sources(dir, group, kind, cm) {
		for _, t := range tests.Tests {
			r := result{Kind: "health", Script: script, Source: src.name, OpenLibs: src.openLibs, Input: t.InputPath, Expected: t.HealthStatus}
			if src.health == "" {
				r.Error = fmt.Sprintf("%s has no health script for %s", src.name, script)
				out = append(out, r)
				continue
			}
			obj, err := readObject(filepath.Join(dir, group, kind, t.InputPath))
			if err != nil {
				r.Error = err.Error()
				out = append(out, r)
				continue
			}
			got, err := executeHealth(luaVM{openLibs: src.openLibs}, obj, src.health)
			if err != nil {
				r.Error = err.Error()
			} else {
				r.Actual = got
				r.OK = *got == t.HealthStatus
			}
			out = append(out, r)
		}
	}
	return out
}

// executeHealth is Argo CD's ExecuteHealthLua: the returned table, through JSON, is {status, message}; a status
// Argo CD does not know becomes Unknown with a fixed message.
func executeHealth(vm luaVM, obj map[string]any, script string) (*healthStatus, error) {
	ret, err := vm.run(obj, script)
	if err != nil {
		return nil, err
	}
	b, _ := json.Marshal(ret)
	hs := &healthStatus{}
	if err := json.Unmarshal(b, hs); err != nil {
		return nil, err
	}
	switch hs.Status {
	case "Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown":
		return hs, nil
	}
	return &healthStatus{Status: "Unknown", Message: "Lua returned an invalid health status"}, nil
}

func runActionTests(dir, group, kind string, cm map[string]string, now *time.Time) []result {
	script := group + "/" + kind
	base := filepath.Join(dir, group, kind, "actions")
	var tests actionTests
	if err := readYAML(filepath.Join(base, "action_test.yaml"), &tests); err != nil {
		return []result{{Kind: "action", Script: script, Error: err.Error()}}
	}
	var out []result
	for _, src := range sources(dir, group, kind, cm) {
		for _, t := range tests.DiscoveryTests {
			r := result{Kind: "discovery", Script: script + "/actions", Source: src.name, OpenLibs: src.openLibs, Input: t.InputPath, Expected: t.Result}
			obj, err := readObject(filepath.Join(base, t.InputPath))
			if err == nil && src.discovery == "" {
				err = fmt.Errorf("%s has no discovery.lua for %s", src.name, script)
			}
			var got []resourceAction
			if err == nil {
				got, err = executeDiscovery(luaVM{openLibs: src.openLibs}, obj, src.discovery)
			}
			if err != nil {
				r.Error = err.Error()
			} else {
				r.Actual = got
				r.OK = sameActions(got, t.Result)
			}
			out = append(out, r)
		}
		for _, t := range tests.ActionTests {
			r := result{Kind: "action", Script: script + "/actions/" + t.Action, Source: src.name, OpenLibs: src.actionOpenLibs, Input: t.InputPath}
			obj, err := readObject(filepath.Join(base, t.InputPath))
			var expected map[string]any
			if err == nil {
				expected, err = readObject(filepath.Join(base, t.ExpectedOutputPath))
			}
			if err == nil && src.actions[t.Action] == "" {
				err = fmt.Errorf("%s has no action %q for %s", src.name, t.Action, script)
			}
			var got map[string]any
			if err == nil {
				got, err = executeAction(luaVM{openLibs: src.actionOpenLibs, now: now}, obj, src.actions[t.Action])
			}
			r.Expected = expected
			if err != nil {
				r.Error = err.Error()
			} else {
				r.Actual = got
				r.OK = reflect.DeepEqual(normalizeJSON(got), normalizeJSON(expected))
			}
			out = append(out, r)
		}
	}
	return out
}

// executeDiscovery is Argo CD's ExecuteResourceActionDiscovery: a table keyed by action name; an empty table is
// no actions; a value may set disabled, iconClass, displayName.
func executeDiscovery(vm luaVM, obj map[string]any, script string) ([]resourceAction, error) {
	ret, err := vm.run(obj, script)
	if err != nil {
		return nil, err
	}
	if list, ok := ret.([]any); ok && len(list) == 0 {
		return []resourceAction{}, nil
	}
	m, ok := ret.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("discovery returned %T, not a table keyed by action name", ret)
	}
	actions := []resourceAction{}
	for name, v := range m {
		a := resourceAction{Name: name}
		if fields, ok := v.(map[string]any); ok {
			b, _ := json.Marshal(fields)
			if err := json.Unmarshal(b, &a); err != nil {
				return nil, fmt.Errorf("action %s: %w", name, err)
			}
			a.Name = name
		}
		actions = append(actions, a)
	}
	sort.Slice(actions, func(i, j int) bool { return actions[i].Name < actions[j].Name })
	return actions, nil
}

func sameActions(got, want []resourceAction) bool {
	w := append([]resourceAction(nil), want...)
	sort.Slice(w, func(i, j int) bool { return w[i].Name < w[j].Name })
	return reflect.DeepEqual(got, w) || (len(got) == 0 && len(w) == 0)
}

// executeAction is Argo CD's ExecuteResourceAction for an old-style action (the script returns the changed
// object, which Argo CD applies as a patch): the returned object, with empty tables that stood for maps in the
// input turned back into maps (cleanReturnedObj). New-style results (a list of operations) are refused here:
// the project's actions do not use them.
func executeAction(vm luaVM, obj map[string]any, script string) (map[string]any, error) {
	ret, err := vm.run(obj, script)
	if err != nil {
		return nil, err
	}
	m, ok := ret.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("action returned %T; only old-style actions (the changed object) are supported", ret)
	}
	return restoreEmptyMaps(m, obj), nil
}

// restoreEmptyMaps: Lua cannot tell an empty map from an empty list, and the encoder writes `[]`; where the
// input had a map, an empty list in the output is that map again (Argo CD's cleanReturnedObj).
func restoreEmptyMaps(out, in map[string]any) map[string]any {
	for k, nv := range out {
		ov, ok := in[k]
		if !ok {
			continue
		}
		switch n := nv.(type) {
		case map[string]any:
			if o, ok := ov.(map[string]any); ok {
				out[k] = restoreEmptyMaps(n, o)
			}
		case []any:
			switch o := ov.(type) {
			case map[string]any:
				if len(n) == 0 {
					out[k] = o
				}
			case []any:
				for i := range n {
					if i >= len(o) {
						break
					}
					if nm, ok := n[i].(map[string]any); ok {
						if om, ok := o[i].(map[string]any); ok {
							n[i] = restoreEmptyMaps(nm, om)
						}
					}
				}
			}
		}
	}
	return out
}

// normalizeJSON round-trips through JSON so numbers compare as numbers whatever their Go type.
func normalizeJSON(v any) any {
	b, _ := json.Marshal(v)
	var out any
	_ = json.Unmarshal(b, &out)
	return out
}
