// A form rendered from a JSON Schema (the engine's config types, derived by schemars): objects, tagged unions
// (`kind`), enums, strings, numbers, booleans, lists, and secret references. A new connector needs no form code.

import { createContext, useContext, useEffect, useState } from "react";
import { envVisible, pickFile } from "./api";

/** Errors the engine reported about fields of the form, by path (`entities.0.business_key`): each is shown beside
 * its field. */
export const FieldErrors = createContext<Record<string, string>>({});

function FieldError({ path }: { path: string }) {
  const message = useContext(FieldErrors)[path];
  if (!message) return null;
  return (
    <span className="field-error" role="alert" data-testid={`error-${path}`}>
      {message}
    </span>
  );
}

export interface JsonSchema {
  $ref?: string;
  type?: string | string[];
  description?: string;
  default?: unknown;
  enum?: unknown[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  oneOf?: JsonSchema[];
  anyOf?: JsonSchema[];
  allOf?: JsonSchema[];
  items?: JsonSchema;
  definitions?: Record<string, JsonSchema>;
  additionalProperties?: boolean | JsonSchema;
}

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

/** A secret typed into a form: stored in the keychain under `entry` before the pipeline is saved or tested. */
export type PendingSecrets = Record<string, string>;

interface Resolved extends JsonSchema {
  nullable?: boolean;
  secret?: boolean;
  /** A path to a file on this machine: the field offers a file picker. */
  file?: boolean;
}

/** Follows `$ref`, a lone `allOf` wrapper and `anyOf [X, null]` (an optional X). */
export function resolve(schema: JsonSchema, root: JsonSchema): Resolved {
  if (schema.$ref) {
    const name = schema.$ref.split("/").pop() ?? "";
    const target = root.definitions?.[name] ?? {};
    return {
      ...resolve(target, root),
      description: schema.description ?? target.description,
      secret: name === "Secret",
      file: name === "FilePath",
    };
  }
  if (schema.allOf?.length === 1 && schema.allOf[0]) {
    return { ...resolve(schema.allOf[0], root), description: schema.description, default: schema.default };
  }
  if (schema.anyOf) {
    const other = schema.anyOf.find((s) => s.type !== "null");
    if (other && schema.anyOf.length === 2) {
      return { ...resolve(other, root), description: schema.description, nullable: true };
    }
  }
  if (Array.isArray(schema.type) && schema.type.includes("null")) {
    return { ...schema, type: schema.type.find((t) => t !== "null"), nullable: true };
  }
  return schema;
}

/** The `kind` of each variant of a tagged union, or null when the schema is not one. */
export function variants(schema: Resolved): string[] | null {
  if (!schema.oneOf) return null;
  const kinds = schema.oneOf.map((v) => v.properties?.kind?.enum?.[0]);
  return kinds.every((k): k is string => typeof k === "string") ? kinds : null;
}

/** The string values of an enum (plain, or one variant per value as schemars writes documented enums). */
function enumValues(schema: Resolved): string[] | null {
  if (schema.enum) return schema.enum.filter((v): v is string => typeof v === "string");
  if (schema.oneOf?.every((v) => v.enum?.length === 1 && typeof v.enum[0] === "string")) {
    return schema.oneOf.map((v) => v.enum?.[0] as string);
  }
  return null;
}

function label(name: string): string {
  return name.replace(/_/g, " ");
}

interface FieldProps {
  name: string;
  path: string;
  schema: JsonSchema;
  root: JsonSchema;
  value: Json | undefined;
  onChange: (value: Json | undefined) => void;
  secrets: PendingSecrets;
  onSecret: (entry: string, value: string | undefined) => void;
}

/** The fields of one object (or of the chosen variant of a union), `kind` excepted. */
export function ObjectFields({
  schema,
  root,
  path,
  value,
  onChange,
  secrets,
  onSecret,
}: Omit<FieldProps, "name" | "value" | "onChange"> & { value: JsonObject; onChange: (value: JsonObject) => void }) {
  const properties = resolve(schema, root).properties ?? {};
  return (
    <div className="form-fields">
      {Object.entries(properties)
        .filter(([key]) => key !== "kind")
        .map(([key, sub]) => (
          <Field
            key={key}
            name={key}
            path={`${path}.${key}`}
            schema={sub}
            root={root}
            value={value[key]}
            secrets={secrets}
            onSecret={onSecret}
            onChange={(v) => {
              const rest = Object.fromEntries(Object.entries(value).filter(([k]) => k !== key));
              onChange(v === undefined ? rest : { ...rest, [key]: v });
            }}
          />
        ))}
    </div>
  );
}

/** A tagged union: a select of its kinds, then the chosen kind's fields. */
export function VariantFields(props: Omit<FieldProps, "name" | "value" | "onChange"> & {
  value: JsonObject | undefined;
  onChange: (value: JsonObject | undefined) => void;
  optional?: boolean;
}) {
  const resolved = resolve(props.schema, props.root);
  const kinds = variants(resolved) ?? [];
  const kind = typeof props.value?.kind === "string" ? props.value.kind : "";
  const variant = resolved.oneOf?.[kinds.indexOf(kind)];
  return (
    <>
      <select
        data-testid={`field-${props.path}.kind`}
        aria-label={`${props.path} kind`}
        value={kind}
        onChange={(e) => props.onChange(e.target.value ? { kind: e.target.value } : undefined)}
      >
        {(props.optional || !kind) && <option value="">{props.optional ? "none" : "choose…"}</option>}
        {kinds.map((k) => (
          <option key={k} value={k}>
            {k}
          </option>
        ))}
      </select>
      {variant?.description && <p className="help">{variant.description}</p>}
      {variant && props.value && (
        <ObjectFields {...props} schema={variant} value={props.value} onChange={(v) => props.onChange({ ...v, kind })} />
      )}
    </>
  );
}

/** Whether the console sees environment variable `name` (null while unknown or unnamed). */
function useEnvVisible(name: string): boolean | null {
  const [visible, setVisible] = useState<boolean | null>(null);
  useEffect(() => {
    if (!name.trim()) {
      setVisible(null);
      return;
    }
    let current = true;
    envVisible(name)
      .then((v) => current && setVisible(v))
      .catch(() => current && setVisible(null));
    return () => {
      current = false;
    };
  }, [name]);
  return visible;
}

function SecretField({ path, value, onChange, secrets, onSecret }: FieldProps) {
  const current = (value ?? {}) as JsonObject;
  const mode = "keychain" in current ? "keychain" : "env" in current ? "env" : "";
  const entry = typeof current.keychain === "string" ? current.keychain : "";
  const variable = typeof current.env === "string" ? current.env : "";
  const visible = useEnvVisible(mode === "env" ? variable : "");
  return (
    <span className="secret">
      <select
        data-testid={`field-${path}.mode`}
        aria-label={`${path} stored in`}
        value={mode}
        onChange={(e) => {
          // A value typed for the keychain is dropped when the secret is to come from elsewhere.
          if (entry && secrets[entry] !== undefined) onSecret(entry, undefined);
          onChange(e.target.value === "" ? undefined : { [e.target.value]: "" });
        }}
      >
        <option value="">none</option>
        <option value="keychain">OS keychain</option>
        <option value="env">environment variable</option>
      </select>
      {mode === "env" && (
        <input
          data-testid={`field-${path}.env`}
          placeholder="VARIABLE_NAME"
          value={variable}
          onChange={(e) => onChange({ env: e.target.value })}
        />
      )}
      {mode === "env" && visible === false && (
        <span className="field-warning" role="status" data-testid={`env-missing-${path}`}>
          {variable} is not set for the console: it sees only the environment it was started with. Set it (e.g. in
          ~/.profile, then log out and in) and start the console again — or keep the secret in the OS keychain.
        </span>
      )}
      {mode === "keychain" && (
        <>
          <input
            data-testid={`field-${path}.keychain`}
            placeholder="keychain entry name"
            value={entry}
            onChange={(e) => {
              if (secrets[entry] !== undefined) onSecret(entry, undefined);
              onChange({ keychain: e.target.value });
            }}
          />
          <input
            type="password"
            autoComplete="off"
            data-testid={`field-${path}.value`}
            placeholder="value (stored in the keychain, never shown again)"
            value={secrets[entry] ?? ""}
            disabled={!entry}
            onChange={(e) => onSecret(entry, e.target.value || undefined)}
          />
        </>
      )}
    </span>
  );
}

function Field(props: FieldProps) {
  const { name, path, root, value, onChange } = props;
  const schema = resolve(props.schema, root);
  const help = schema.description;
  const wrap = (control: React.ReactNode) => (
    <label className="form-field" title={help}>
      <span className="form-label">{label(name)}</span>
      {control}
      {help && (
        <span className="help" data-testid={`help-${props.path}`}>
          {help}
        </span>
      )}
      <FieldError path={path} />
    </label>
  );
  if (schema.secret) return wrap(<SecretField {...props} />);
  if (variants(schema)) {
    return (
      <fieldset className="form-group">
        <legend>{label(name)}</legend>
        <FieldError path={path} />
        <VariantFields
          {...props}
          schema={schema}
          optional={schema.nullable}
          value={value as JsonObject | undefined}
          onChange={onChange}
        />
      </fieldset>
    );
  }
  const choices = enumValues(schema);
  if (choices) {
    return wrap(
      <select data-testid={`field-${path}`} value={typeof value === "string" ? value : ""} onChange={(e) => onChange(e.target.value || undefined)}>
        <option value="">{typeof schema.default === "string" ? `${schema.default} (default)` : "—"}</option>
        {choices.map((c) => (
          <option key={c} value={c}>
            {c}
          </option>
        ))}
      </select>,
    );
  }
  if (schema.type === "array") {
    const items = resolve(schema.items ?? {}, root);
    if (items.type === "string") {
      const list = Array.isArray(value) ? (value as string[]) : [];
      return wrap(
        <input
          data-testid={`field-${path}`}
          placeholder="comma-separated"
          value={list.join(", ")}
          onChange={(e) => {
            const next = e.target.value.split(",").map((s) => s.trim()).filter(Boolean);
            onChange(next.length ? next : undefined);
          }}
        />,
      );
    }
    const list = Array.isArray(value) ? (value as JsonObject[]) : [];
    return (
      <fieldset className="form-group">
        <legend>{label(name)}</legend>
        <FieldError path={path} />
        {list.map((item, i) => (
          <div key={i} className="form-item" data-testid={`item-${path}.${i}`}>
            <ObjectFields
              {...props}
              schema={items}
              path={`${path}.${i}`}
              value={item}
              onChange={(v) => onChange(list.map((old, j) => (j === i ? v : old)))}
            />
            <button type="button" className="secondary" onClick={() => onChange(list.filter((_, j) => j !== i))}>
              Remove
            </button>
          </div>
        ))}
        <button type="button" className="secondary" data-testid={`add-${path}`} onClick={() => onChange([...list, {}])}>
          Add {label(name).replace(/ies$/, "y").replace(/s$/, "")}
        </button>
      </fieldset>
    );
  }
  if (schema.type === "object" && schema.properties) {
    return (
      <fieldset className="form-group">
        <legend>{label(name)}</legend>
        <FieldError path={path} />
        <ObjectFields {...props} schema={schema} value={(value ?? {}) as JsonObject} onChange={onChange} />
      </fieldset>
    );
  }
  if (schema.type === "boolean") {
    return wrap(
      <input type="checkbox" data-testid={`field-${path}`} checked={value === true} onChange={(e) => onChange(e.target.checked || undefined)} />,
    );
  }
  if (schema.type === "integer" || schema.type === "number") {
    return wrap(
      <input
        type="number"
        data-testid={`field-${path}`}
        placeholder={schema.default !== undefined ? String(schema.default) : ""}
        value={typeof value === "number" ? value : ""}
        onChange={(e) => onChange(e.target.value === "" ? undefined : Number(e.target.value))}
      />,
    );
  }
  if (schema.type === "string" && schema.file) {
    return wrap(
      <span className="file-field">
        <input
          data-testid={`field-${path}`}
          placeholder="path to a file"
          value={typeof value === "string" ? value : ""}
          onChange={(e) => onChange(e.target.value || undefined)}
        />
        <button
          type="button"
          className="secondary"
          data-testid={`pick-${path}`}
          onClick={() => {
            pickFile(`Choose ${label(name)}`)
              .then((picked) => picked && onChange(picked))
              .catch(() => undefined);
          }}
        >
          Browse…
        </button>
      </span>,
    );
  }
  if (schema.type === "string") {
    return wrap(
      <input
        data-testid={`field-${path}`}
        placeholder={typeof schema.default === "string" ? schema.default : ""}
        value={typeof value === "string" ? value : ""}
        onChange={(e) => onChange(e.target.value || undefined)}
      />,
    );
  }
  // Maps (field overrides, claims) are edited elsewhere (the mapping editor) or in the pipeline file.
  return null;
}
