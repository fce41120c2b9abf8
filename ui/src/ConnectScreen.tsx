import { useEffect, useState } from "react";
import {
  alreadyExists,
  CommandError,
  connectorSchema,
  createPipeline,
  importPipeline,
  pipelineDefinition,
  testConnection,
  testTarget,
  updatePipeline,
} from "./api";
import type { ConnectionReport, Entity, EntityFound, Pipeline, SourceConfig, TargetConfig, TargetReport } from "./bindings";
import { useUnsavedGuard } from "./unsaved";
import { FieldErrors, type JsonObject, type JsonSchema, type PendingSecrets, ObjectFields, VariantFields } from "./SchemaForm";

interface Schemas {
  source: JsonSchema;
  target: JsonSchema;
  entity: JsonSchema;
  /** The source kinds whose entities the user names (the engine says which; it requires them for those). */
  kinds_naming_entities: string[];
}

/** A form's JSON as the engine's type: the form is rendered from that type's JSON Schema, and the engine reads it
 * into the type when it arrives (a mismatch comes back as invalid_input naming the field). */
function formValue<T>(json: unknown): T {
  return json as T;
}

/** The stored pipeline the form opens on: edited in place (its name fixed), or cloned under a new name. */
export interface FormSource {
  name: string;
  mode: "edit" | "clone";
}

/** A stored pipeline's definition as the form's values (secret references stay references). */
function asForm(value: unknown): JsonObject {
  return value as JsonObject;
}

/** A new pipeline from forms rendered from the connectors' JSON Schema: source, entities (REST), target; a
 * connection test that says what the source holds; secrets written straight to the keychain; import of a file.
 * Opened on a stored pipeline (`from`), the same form edits it or saves a copy. */
export function ConnectScreen({ onCreated, from = null }: { onCreated: (name: string) => void; from?: FormSource | null }) {
  const [schemas, setSchemas] = useState<Schemas | null>(null);
  const [name, setName] = useState("");
  const [source, setSource] = useState<JsonObject | undefined>(undefined);
  const [target, setTarget] = useState<JsonObject | undefined>(undefined);
  const [entities, setEntities] = useState<JsonObject[]>([]);
  const [secrets, setSecrets] = useState<PendingSecrets>({});
  const [report, setReport] = useState<ConnectionReport | null>(null);
  const [targetReport, setTargetReport] = useState<TargetReport | null>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  // Errors the engine placed on a field of the form, shown beside it.
  const [fieldErrors, setFieldErrors] = useState<Record<string, string>>({});
  const [notice, setNotice] = useState<string | null>(null);
  const [importText, setImportText] = useState("");
  // An import whose pipeline name is taken waits for "Replace" (the message names the pipeline).
  const [replacing, setReplacing] = useState<string | null>(null);
  // The entities and source kind the stored pipeline had: kept as they are for sources that list their own
  // entities (Bubble), whose entities hold only the Mapping screen's choices.
  const [loaded, setLoaded] = useState<{ kind: string; entities: JsonObject[] } | null>(null);
  // The form as opened or last saved: anything else (a typed secret included) is unsaved.
  const current = JSON.stringify({ name, source, target, entities, secrets });
  const [baseline, setBaseline] = useState(current);
  useUnsavedGuard(current !== baseline, from ? `The form of ${from.name}` : "The new pipeline's form");

  // A refused save or test brings the field it is about into view.
  useEffect(() => {
    const [path] = Object.keys(fieldErrors);
    if (path) document.querySelector(`[data-testid="error-${path}"]`)?.scrollIntoView?.({ block: "center" });
  }, [fieldErrors]);
  useEffect(() => {
    connectorSchema()
      .then((s) => setSchemas(s as unknown as Schemas))
      .catch((e: unknown) => setError(String(e)));
  }, []);

  useEffect(() => {
    if (!from) return;
    pipelineDefinition(from.name)
      .then((stored) => {
        setName(from.mode === "edit" ? stored.name : `${stored.name}-copy`);
        setSource(asForm(stored.source));
        setTarget(asForm(stored.target));
        const storedEntities = (stored.entities ?? []).map(asForm);
        setEntities(storedEntities);
        setLoaded({ kind: stored.source.kind, entities: storedEntities });
        const openedName = from.mode === "edit" ? stored.name : `${stored.name}-copy`;
        setBaseline(
          JSON.stringify({ name: openedName, source: asForm(stored.source), target: asForm(stored.target), entities: storedEntities, secrets: {} }),
        );
      })
      .catch((e: unknown) => setError(String(e)));
  }, [from]);

  const onSecret = (entry: string, value: string | undefined) =>
    setSecrets((all) => {
      const rest = Object.fromEntries(Object.entries(all).filter(([k]) => k !== entry));
      return value === undefined ? rest : { ...rest, [entry]: value };
    });


  // REST resources and PostgreSQL tables are named by the user; Bubble lists its types itself.
  const listsEntities = typeof source?.kind === "string" && (schemas?.kinds_naming_entities ?? []).includes(source.kind);
  const entityList = listsEntities ? entities : loaded && loaded.kind === source?.kind ? loaded.entities : [];
  const editing = from?.mode === "edit";

  const act = (what: string, action: () => Promise<void>) => {
    setBusy(what);
    setError(null);
    setFieldErrors({});
    setNotice(null);
    action()
      .catch((e: unknown) => {
        if (e instanceof CommandError && e.field) {
          setFieldErrors({ [e.field]: e.message });
          setError("The field marked in red below needs a change.");
        } else {
          setError(String(e));
        }
      })
      .finally(() => setBusy(null));
  };

  const test = (list: JsonObject[] = entityList) =>
    act("Testing the connection…", async () => {
      setReport(null);
      // Typed secrets are used for the test and stored only when the pipeline is saved.
      setReport(await testConnection(formValue<SourceConfig>(source ?? {}), formValue<Entity[]>(list), secrets));
    });
  /** Makes `field` the business key of the entity the test found without its key, and tests again. */
  const takeAsKey = (found: EntityFound, field: string) => {
    const next = entities.map((e) => (e.name === found.name ? { ...e, business_key: [field] } : e));
    setEntities(next);
    test(next);
  };
  const missingWhat = [!source && "a source kind", !target && "a target kind", !name.trim() && "a name"].filter(Boolean);
  const busyWhy = busy ? `Wait: ${busy.replace("…", "")} is under way` : undefined;

  const testTheTarget = () =>
    act("Testing the target…", async () => {
      setTargetReport(null);
      // A REST target is tested with a lookup in an entity's resource: the form's, or those the source test found.
      const tables = [
        ...entityList.map((e) => String(e.table ?? e.name ?? "")),
        ...(report?.entities ?? []).map((e) => e.name),
      ].filter((t) => t !== "");
      setTargetReport(await testTarget(formValue<TargetConfig>(target ?? {}), tables, secrets));
    });

  const save = () =>
    act("Saving…", async () => {
      const pipeline = formValue<Pipeline>({ version: 1, name: name.trim(), source, target, entities: entityList });
      // The engine checks the keys against the source, then stores the typed secrets in the keychain.
      const saved = editing && from ? await updatePipeline(from.name, pipeline, secrets) : await createPipeline(pipeline, secrets);
      setSecrets({});
      setBaseline(JSON.stringify({ name, source, target, entities, secrets: {} }));
      setNotice(
        editing
          ? `Saved changes to ${saved}. Its schedule and history are kept; review its mapping and schema before the next run.`
          : `Saved pipeline ${saved}. Review its mapping and schema, then run it from Pipelines.`,
      );
      onCreated(saved);
    });

  const importFile = (replace: boolean) =>
    act("Importing…", async () => {
      setReplacing(null);
      try {
        const imported = await importPipeline(importText, replace);
        setNotice(replace ? `Replaced pipeline ${imported}.` : `Imported pipeline ${imported}.`);
        setImportText("");
        onCreated(imported);
      } catch (e: unknown) {
        if (!alreadyExists(e)) throw e;
        setReplacing(e.message);
      }
    });

  if (!schemas) return <p className="muted">{error ?? "Loading connectors…"}</p>;
  return (
    <FieldErrors.Provider value={fieldErrors}>
    <section className="screen connect">
      <div className="toolbar">
        <h1 data-testid="form-title">
          {from?.mode === "edit" ? `Edit ${from.name}` : from?.mode === "clone" ? `Clone of ${from.name}` : "New pipeline"}
        </h1>
        <button
          type="button"
          data-testid="test-connection"
          disabled={busy !== null || !source}
          title={busyWhy ?? (!source ? "Choose a source kind first" : undefined)}
          onClick={() => test()}
        >
          Test connection
        </button>
        <button
          type="button"
          data-testid="test-target"
          disabled={busy !== null || !target}
          title={busyWhy ?? (!target ? "Choose a target kind first" : undefined)}
          onClick={testTheTarget}
        >
          Test target
        </button>
        <button
          type="button"
          data-testid="save-pipeline"
          disabled={busy !== null || missingWhat.length > 0}
          title={busyWhy ?? (missingWhat.length > 0 ? `Give the pipeline ${missingWhat.join(", ")} first` : undefined)}
          onClick={save}
        >
          {editing ? "Save changes" : "Save pipeline"}
        </button>
        {busy && <span className="muted">{busy}</span>}
      </div>
      {error && (
        <p role="alert" className="error" data-testid="connect-error">
          {error}
        </p>
      )}
      {notice && (
        <p className="notice" data-testid="connect-notice">
          {notice}
        </p>
      )}
      {report?.tls && (
        <p className="muted" data-testid="source-tls">
          Source connection: {report.tls}
        </p>
      )}
      {targetReport && (
        <p className="muted" data-testid="target-report">
          Target: {targetReport.detail}
          {targetReport.tls && <> — {targetReport.tls}</>}
        </p>
      )}
      {report && (
        <table className="grid" data-testid="connection-report">
          <thead>
            <tr>
              <th>Found</th>
              <th className="num">Records</th>
              <th className="num">Fields</th>
              <th>Business key</th>
              <th>Some fields</th>
            </tr>
          </thead>
          <tbody>
            {report.entities.map((e) => (
              <FoundRows key={e.name} found={e} canPick={listsEntities} onUseKey={(field) => takeAsKey(e, field)} />
            ))}
          </tbody>
        </table>
      )}
      <label className="form-field">
        <span className="form-label">name</span>
        <input
          data-testid="new-name"
          value={name}
          disabled={editing}
          title={editing ? "An edit keeps the name; to rename, clone under the new name and delete this one" : undefined}
          onChange={(e) => setName(e.target.value)}
          placeholder="unique pipeline name"
        />
      </label>
      <fieldset className="form-group">
        <legend>Source</legend>
        <VariantFields
          path="source"
          schema={schemas.source}
          root={schemas.source}
          value={source}
          onChange={(v) => {
            setSource(v);
            setReport(null);
          }}
          secrets={secrets}
          onSecret={onSecret}
        />
      </fieldset>
      {listsEntities && (
        <fieldset className="form-group">
          <legend>{source?.kind === "postgres" ? "Entities (tables, or queries with a business key)" : "Entities (REST resources)"}</legend>
          {entities.map((entity, i) => (
            <div key={i} className="form-item" data-testid={`entity-form-${i}`}>
              <ObjectFields
                path={`entities.${i}`}
                schema={schemas.entity}
                root={schemas.entity}
                value={entity}
                onChange={(v) => setEntities((all) => all.map((old, j) => (j === i ? v : old)))}
                secrets={secrets}
                onSecret={onSecret}
              />
              <button type="button" className="secondary" onClick={() => setEntities((all) => all.filter((_, j) => j !== i))}>
                Remove
              </button>
            </div>
          ))}
          <button type="button" className="secondary" data-testid="add-entity" onClick={() => setEntities((all) => [...all, {}])}>
            Add entity
          </button>
        </fieldset>
      )}
      <fieldset className="form-group">
        <legend>Target</legend>
        <VariantFields
          path="target"
          schema={schemas.target}
          root={schemas.target}
          value={target}
          onChange={(v) => {
            setTarget(v);
            setTargetReport(null);
          }}
          secrets={secrets}
          onSecret={onSecret}
        />
      </fieldset>
      {!from && (
        <fieldset className="form-group">
          <legend>Or import a pipeline file</legend>
          <textarea
            data-testid="import-text"
            rows={6}
            placeholder={'version = 1\nname = "…"\n[source]\n…'}
            value={importText}
            onChange={(e) => setImportText(e.target.value)}
          />
          <button type="button" data-testid="import-pipeline" disabled={busy !== null || !importText.trim()} onClick={() => importFile(false)}>
            Import
          </button>
          {replacing && (
            <div className="confirm" role="dialog" aria-label="Replace the pipeline" data-testid="confirm-replace">
              <p>{replacing}</p>
              <button type="button" className="danger" data-testid="confirm-replace-yes" onClick={() => importFile(true)}>
                Replace it
              </button>{" "}
              <button type="button" className="secondary" onClick={() => setReplacing(null)}>
                Keep the one I have
              </button>
            </div>
          )}
        </fieldset>
      )}
    </section>
    </FieldErrors.Provider>
  );
}

interface FoundProps {
  found: EntityFound;
  /** Whether the analyst names this source's entities (and so can set their key here). */
  canPick: boolean;
  onUseKey: (field: string) => void;
}

/** One entity the test found, and under it the settings naming fields its records lack, with the fields to pick. */
function FoundRows({ found: e, canPick, onUseKey }: FoundProps) {
  const keyMissing = e.missing.some((m) => m.setting === "business_key");
  return (
    <>
      <tr data-testid={`found-${e.name}`}>
        <td>{e.name}</td>
        <td className="num">
          {(e.total ?? e.sampled).toLocaleString("en-US")}
          {e.total === null ? "+" : ""}
        </td>
        <td className="num">{e.fields.length}</td>
        <td className={keyMissing ? "status failed" : ""}>
          {e.business_key.join(", ")} {keyMissing ? "(not in the records)" : e.sampled > 0 ? "✓" : ""}
        </td>
        <td className="muted">{e.fields.slice(0, 6).join(", ")}</td>
      </tr>
      {e.missing.map((m) => (
        <tr key={`${m.setting}-${m.field}`} data-testid={`missing-${e.name}-${m.setting}`}>
          <td colSpan={5}>
            <p className="warning key-check">
              {m.message}
              {m.setting === "business_key" &&
                canPick &&
                e.key_candidates.map((c) => (
                  <button key={c} type="button" data-testid={`use-key-${e.name}-${c}`} onClick={() => onUseKey(c)}>
                    Use {c} as key
                  </button>
                ))}
            </p>
          </td>
        </tr>
      ))}
    </>
  );
}

