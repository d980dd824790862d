package main

// The Lua VM as Argo CD sets it up for resource customizations (argo-cd util/lua/lua.go, runLua): gopher-lua
// with the standard libraries skipped unless the script may use them, then package, base and table opened
// and a "safe" os (time and date only) installed and preloaded; a 1 s timeout; the live object in the
// global `obj`. Written from that description, not copied.

import (
	"context"
	"fmt"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// scriptTimeout is Argo CD's limit for one script run.
const scriptTimeout = time.Second

type luaVM struct {
	// openLibs: every standard library (Argo CD: built-in scripts, and argocd-cm scripts with
	// resource.customizations.useOpenLibs.<group>_<kind>: "true"). Otherwise only package, base, table, safe os.
	openLibs bool
	// now, when set, is the clock of os.time() and os.date() without a time argument (action tests only:
	// an action that stamps the time must give one expected output).
	now *time.Time
}

// run executes script with obj as the global `obj` and returns what the chunk returned, as JSON-like Go data
// (the conversion happens before the state is closed).
func (v luaVM) run(obj map[string]any, script string) (any, error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: !v.openLibs})
	defer l.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
	} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.open), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			return nil, fmt.Errorf("opening Lua library %q: %w", lib.name, err)
		}
	}
	safeOs, err := v.safeOsTable(l)
	if err != nil {
		return nil, err
	}
	// The safe os replaces the full one as the global and as the loaded module (what `require("os")` returns
	// first), as Argo CD's OpenSafeOs does.
	l.SetGlobal(lua.OsLibName, safeOs)
	if loaded, ok := l.GetField(l.Get(lua.RegistryIndex), "_LOADED").(*lua.LTable); ok {
		loaded.RawSetString(lua.OsLibName, safeOs)
	}
	l.PreloadModule(lua.OsLibName, func(l *lua.LState) int { l.Push(safeOs); return 1 })

	ctx, cancel := context.WithTimeout(context.Background(), scriptTimeout)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", toLua(l, obj))
	if err := l.DoString(script); err != nil {
		return nil, err
	}
	ret := l.Get(-1)
	if ret.Type() != lua.LTTable {
		return nil, fmt.Errorf("expect table output from Lua script, not %s", ret.Type().String())
	}
	return fromLua(ret)
}

// safeOsTable builds an `os` table with only time and date, taken from gopher-lua's own os library (opened in
// a scratch global, then dropped), so their behaviour is gopher-lua's exactly.
func (v luaVM) safeOsTable(l *lua.LState) (*lua.LTable, error) {
	saved := l.GetGlobal(lua.OsLibName)
	if err := l.CallByParam(lua.P{Fn: l.NewFunction(lua.OpenOs), NRet: 1, Protect: true}, lua.LString(lua.OsLibName)); err != nil {
		return nil, fmt.Errorf("opening the os library: %w", err)
	}
	full, ok := l.GetGlobal(lua.OsLibName).(*lua.LTable)
	l.Pop(1)
	l.SetGlobal(lua.OsLibName, saved)
	if !ok {
		return nil, fmt.Errorf("the os library did not register a table")
	}
	timeFn, dateFn := full.RawGetString("time"), full.RawGetString("date")
	safe := l.NewTable()
	if v.now == nil {
		safe.RawSetString("time", timeFn)
		safe.RawSetString("date", dateFn)
		return safe, nil
	}
	fixed := lua.LNumber(v.now.Unix())
	// With a fixed clock: os.time() (no table) and os.date(fmt) (no time) use it; everything else is passed on.
	safe.RawSetString("time", l.NewFunction(func(l *lua.LState) int {
		if l.GetTop() == 0 {
			l.Push(fixed)
			return 1
		}
		return callThrough(l, timeFn)
	}))
	safe.RawSetString("date", l.NewFunction(func(l *lua.LState) int {
		if l.GetTop() == 1 {
			l.Push(fixed)
		} else if l.GetTop() == 0 {
			l.Push(lua.LString("%c"))
			l.Push(fixed)
		}
		return callThrough(l, dateFn)
	}))
	return safe, nil
}

// callThrough calls fn with the current arguments and returns its results.
func callThrough(l *lua.LState, fn lua.LValue) int {
	args := make([]lua.LValue, l.GetTop())
	for i := range args {
		args[i] = l.Get(i + 1)
	}
	if err := l.CallByParam(lua.P{Fn: fn, NRet: 1, Protect: true}, args...); err != nil {
		l.RaiseError("%s", err.Error())
	}
	return 1
}

// toLua converts JSON-like Go data as Argo CD's decodeValue does: numbers become Lua numbers, lists are
// appended in order, maps set key by key, anything else is nil.
func toLua(l *lua.LState, value any) lua.LValue {
	switch v := value.(type) {
	case bool:
		return lua.LBool(v)
	case float64:
		return lua.LNumber(v)
	case int:
		return lua.LNumber(v)
	case int64:
		return lua.LNumber(v)
	case string:
		return lua.LString(v)
	case []any:
		t := l.CreateTable(len(v), 0)
		for _, item := range v {
			t.Append(toLua(l, item))
		}
		return t
	case map[string]any:
		t := l.CreateTable(0, len(v))
		for k, item := range v {
			t.RawSetH(lua.LString(k), toLua(l, item))
		}
		return t
	}
	return lua.LNil
}

// fromLua converts a Lua value to JSON-like Go data with the rules of the encoder Argo CD uses
// (layeh.com/gopher-json): the first key of a table decides: none → the empty list `[]`, a number → a list whose
// keys must run 1, 2, 3... (else "sparse array"), a string → a map whose keys must all be strings. A table met
// twice in one value is an error (the encoder never forgets a table it visited), as are functions and userdata.
func fromLua(value lua.LValue) (any, error) {
	return fromLuaVisited(value, map[*lua.LTable]bool{})
}

func fromLuaVisited(value lua.LValue, visited map[*lua.LTable]bool) (any, error) {
	switch v := value.(type) {
	case *lua.LNilType:
		return nil, nil
	case lua.LBool:
		return bool(v), nil
	case lua.LNumber:
		return float64(v), nil
	case lua.LString:
		return string(v), nil
	case *lua.LTable:
		if visited[v] {
			return nil, fmt.Errorf("cannot encode recursively nested tables to JSON")
		}
		visited[v] = true
		key, item := v.Next(lua.LNil)
		switch key.Type() {
		case lua.LTNil:
			return []any{}, nil
		case lua.LTNumber:
			list := []any{}
			expected := lua.LNumber(1)
			for key != lua.LNil {
				if key.Type() != lua.LTNumber {
					return nil, fmt.Errorf("cannot encode mixed or invalid key types")
				}
				if key != expected {
					return nil, fmt.Errorf("cannot encode sparse array")
				}
				conv, err := fromLuaVisited(item, visited)
				if err != nil {
					return nil, err
				}
				list = append(list, conv)
				expected++
				key, item = v.Next(key)
			}
			return list, nil
		case lua.LTString:
			m := map[string]any{}
			for key != lua.LNil {
				if key.Type() != lua.LTString {
					return nil, fmt.Errorf("cannot encode mixed or invalid key types")
				}
				conv, err := fromLuaVisited(item, visited)
				if err != nil {
					return nil, err
				}
				m[key.String()] = conv
				key, item = v.Next(key)
			}
			return m, nil
		}
		return nil, fmt.Errorf("cannot encode mixed or invalid key types")
	}
	return nil, fmt.Errorf("cannot encode %s to JSON", value.Type().String())
}
