package action

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"time"
)

// Typed options (ARCHITECTURE.md, "Rules every package keeps": inputs at the edge).
// Each subcommand declares a struct whose fields carry `input:"name"` tags; the CLI
// decodes the validated Inputs into it once and the subcommand reads fields, never
// input names. CheckOptions proves, in a unit test, that the struct and the Spec
// agree: every tag names an input of the right kind and every input has a field, so
// a misspelt or forgotten name fails a test rather than a run.
//
// A struct-typed field without a tag (embedded or named) is a group of inputs
// several subcommands share (notify.Webhook, deploy.VerifyOptions) and is filled the
// same way; other untagged fields are not inputs and are left alone.

var durationType = reflect.TypeFor[time.Duration]()

// fieldKinds lists the input kinds each Go field type can hold.
func fieldKinds(t reflect.Type) []Kind {
	switch {
	case t == durationType:
		return []Kind{Duration}
	case t.Kind() == reflect.String:
		return []Kind{String, Enum}
	case t.Kind() == reflect.Bool:
		return []Kind{Bool}
	case t.Kind() == reflect.Int || t.Kind() == reflect.Int64:
		return []Kind{Int}
	case t.Kind() == reflect.Float64:
		return []Kind{Percent}
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String:
		return []Kind{List}
	}
	return nil
}

// walkOptions calls fn for every tagged field of the struct v (recursing into
// untagged struct fields) with the field's path for messages.
func walkOptions(v reflect.Value, path string, fn func(name, path string, f reflect.Value) error) error {
	t := v.Type()
	for i := range t.NumField() {
		sf, f := t.Field(i), v.Field(i)
		name, tagged := sf.Tag.Lookup("input")
		p := path + "." + sf.Name
		switch {
		case tagged:
			if !sf.IsExported() {
				return fmt.Errorf("%s: field with an input tag is not exported", p)
			}
			if err := fn(name, p, f); err != nil {
				return err
			}
		case sf.Type.Kind() == reflect.Struct && sf.Type != durationType && (sf.IsExported() || sf.Anonymous):
			if err := walkOptions(f, p, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

func optionsValue(opts any) (reflect.Value, error) {
	v := reflect.ValueOf(opts)
	if v.Kind() == reflect.Pointer && !v.IsNil() && v.Elem().Kind() == reflect.Struct {
		return v.Elem(), nil
	}
	if v.Kind() == reflect.Struct { // CheckOptions takes a value too
		return v, nil
	}
	return reflect.Value{}, fmt.Errorf("options must be a struct or a pointer to one, not %T", opts)
}

// CheckOptions reports every way the options struct opts and spec disagree: a tag
// naming no input, a field whose type cannot hold its input's kind, an input named
// twice, an input without a field.
func CheckOptions(spec *Spec, opts any) error {
	v, err := optionsValue(opts)
	if err != nil {
		return err
	}
	var problems []error
	seen := map[string]string{}
	err = walkOptions(v, v.Type().Name(), func(name, path string, f reflect.Value) error {
		switch {
		case !spec.HasInput(name):
			problems = append(problems, fmt.Errorf("%s: %s has no input %q", path, spec.Name, name))
		case seen[name] != "":
			problems = append(problems, fmt.Errorf("%s: input %q is already read into %s", path, name, seen[name]))
		case !slices.Contains(fieldKinds(f.Type()), spec.Input(name).Kind):
			problems = append(problems, fmt.Errorf("%s: a %s cannot hold input %q, a %s", path, f.Type(), name, spec.Input(name).Kind))
		}
		seen[name] = path
		return nil
	})
	if err != nil {
		return err
	}
	for _, in := range spec.Inputs {
		if seen[in.Name] == "" {
			problems = append(problems, fmt.Errorf("%s: input %q has no field in %s", spec.Name, in.Name, v.Type()))
		}
	}
	return errors.Join(problems...)
}

// Defaults fills the options struct opts points to with every input's default
// (empty for a required input): what a subcommand starts from before its own
// values (rollback's deploy, tests).
func Defaults(spec *Spec, opts any) {
	in := &Inputs{spec: spec, values: map[string]string{}, set: map[string]bool{}}
	for _, def := range spec.Inputs {
		if err := validate(def, def.Default); err != nil {
			panic(fmt.Sprintf("deploykit %s: the default of %v", spec.Name, err))
		}
		in.values[def.Name] = def.Default
	}
	in.Decode(opts)
}

// Decode fills the options struct opts points to from the validated inputs. A
// mismatch with the spec is a programming error that CheckOptions finds in tests;
// Decode panics on it.
func (in *Inputs) Decode(opts any) {
	v, err := optionsValue(opts)
	if err == nil && v.CanSet() {
		err = CheckOptions(in.spec, opts)
	} else if err == nil {
		err = errors.New("options must be passed by pointer")
	}
	if err != nil {
		panic(fmt.Sprintf("deploykit %s: %v", in.spec.Name, err))
	}
	_ = walkOptions(v, "", func(name, _ string, f reflect.Value) error {
		switch def := in.spec.Input(name); def.Kind {
		case String, Enum:
			f.SetString(in.raw(name))
		case Bool:
			f.SetBool(in.boolean(name))
		case Int:
			f.SetInt(int64(in.integer(name)))
		case Duration:
			f.SetInt(int64(in.duration(name)))
		case Percent:
			f.SetFloat(in.percent(name))
		case List:
			f.Set(reflect.ValueOf(in.list(name)))
		}
		return nil
	})
}
