import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { clearMocks, mockIPC } from "@tauri-apps/api/mocks";
import { MappingScreen } from "./MappingScreen";
import type { EntityView, FieldReport } from "./bindings";

function field(source: string, name: string, extra: Partial<FieldReport> = {}): FieldReport {
  return { source, field: name, column: source, type: "String", collides_with: [], note: "", changes: [], error: null, ...extra };
}

/** The view as the engine sends it: the stored key `sku`, marked on its field. */
function view(fields: FieldReport[]): EntityView {
  return {
    report: { entity: "products", table: "products", model: "Products", fields, indexes: [] },
    samples: { sku: ["SKU-1", "SKU-2"] },
    evidence: { sku: "2 sampled: 2 texts" },
    excluded: [],
    business_key: ["sku"],
    key_missing: [],
    missing: [],
    key_candidates: ["sku"],
    overrides: { sku: { key: true } },
  };
}

// jsdom has no layout: give elements the size the virtualised table would have on screen.
beforeAll(() => {
  Object.defineProperty(HTMLElement.prototype, "clientHeight", { configurable: true, get: () => 460 });
  Object.defineProperty(HTMLElement.prototype, "clientWidth", { configurable: true, get: () => 1000 });
});

afterEach(() => {
  cleanup();
  clearMocks();
});

describe("mapping editor", () => {
  it("shows names, samples and badges, and validates a rename through the engine", async () => {
    const previews: unknown[] = [];
    mockIPC((cmd, args) => {
      if (cmd === "discover_mapping") {
        return [view([field("sku", "sku"), field("2nd Payment %", "f2ndPaymentPercent", { changes: ["symbols_spelled", "numeric_prefix"], note: "symbols spelled out, numeric prefix" })])];
      }
      if (cmd === "preview_mapping") {
        previews.push(args);
        return [view([field("sku", "sku"), field("2nd Payment %", "sku", { changes: ["renamed"], error: '"sku" is already the name of "sku"' })])];
      }
      throw new Error(`unexpected ${cmd}`);
    });
    render(<MappingScreen pipeline="Demo" />);
    const input = await screen.findByLabelText("Field name for 2nd Payment %");
    expect((input as HTMLInputElement).value).toBe("f2ndPaymentPercent");
    expect(screen.getByText("numeric prefix")).toBeTruthy();
    expect(screen.getByText("SKU-1 · SKU-2")).toBeTruthy();
    expect(screen.getAllByTestId("type-cell")[0]?.getAttribute("title")).toBe("2 sampled: 2 texts");

    fireEvent.change(input, { target: { value: "sku" } });
    await waitFor(() => expect(screen.getByTestId("field-error").textContent).toContain("already the name"));
    expect(previews[0]).toMatchObject({ name: "Demo", overrides: { products: { "2nd Payment %": { name: "sku" } } } });
    expect((screen.getByTestId("save-mapping") as HTMLButtonElement).disabled).toBe(true);
  });

  it("moves the business key to another field and never leaves a record without one", async () => {
    const previews: Array<{ overrides: Record<string, Record<string, { key?: boolean }>> }> = [];
    mockIPC((cmd, args) => {
      const fields = [field("sku", "sku"), field("name", "name")];
      if (cmd === "discover_mapping") return [view(fields)];
      if (cmd === "preview_mapping") {
        const sent = args as unknown as { overrides: Record<string, Record<string, { key?: boolean }>> };
        previews.push(sent);
        const keys = Object.entries(sent.overrides.products ?? {})
          .filter(([, r]) => r.key)
          .map(([s]) => s);
        // As the engine answers: the marked fields are the key, the rules come back as sent.
        return [{ ...view(fields), business_key: keys, overrides: sent.overrides.products ?? {} }];
      }
      throw new Error(`unexpected ${cmd}`);
    });
    render(<MappingScreen pipeline="Demo" />);
    const skuKey = (await screen.findByLabelText("Business key: sku")) as HTMLInputElement;
    expect(skuKey.checked).toBe(true);
    expect((screen.getByLabelText("Skip sku") as HTMLInputElement).disabled).toBe(true);

    fireEvent.click(skuKey);
    expect(screen.getByTestId("mapping-error").textContent).toContain("needs a business key");

    fireEvent.click(screen.getByLabelText("Business key: name"));
    await waitFor(() => expect((screen.getByLabelText("Business key: name") as HTMLInputElement).checked).toBe(true));
    fireEvent.click(screen.getByLabelText("Business key: sku"));
    await waitFor(() => expect((screen.getByLabelText("Business key: sku") as HTMLInputElement).checked).toBe(false));
    expect(previews.at(-1)?.overrides.products).toEqual({ name: { key: true } });
  });

  it("makes a field the key when the stored key is not in the data (nothing is marked)", async () => {
    const previews: Array<{ overrides: Record<string, Record<string, { key?: boolean }>> }> = [];
    mockIPC((cmd, args) => {
      const fields = [field("part_no", "part_no"), field("name", "name")];
      if (cmd === "discover_mapping") {
        return [{ ...view(fields), business_key: ["id"], key_missing: ["id"], key_candidates: ["part_no"], overrides: {} }];
      }
      if (cmd === "preview_mapping") {
        const sent = args as unknown as { overrides: Record<string, Record<string, { key?: boolean }>> };
        previews.push(sent);
        return [{ ...view(fields), business_key: ["part_no"], overrides: sent.overrides.products ?? {} }];
      }
      throw new Error(`unexpected ${cmd}`);
    });
    render(<MappingScreen pipeline="Demo" />);
    fireEvent.click(await screen.findByLabelText("Business key: part_no"));
    await waitFor(() => expect(previews.length).toBe(1));
    expect(previews[0]?.overrides.products).toEqual({ part_no: { key: true } });
  });

  it("says when the key is in none of the sampled records and takes a proposed field in one click", async () => {
    const previews: Array<{ overrides: Record<string, Record<string, { key?: boolean }>> }> = [];
    mockIPC((cmd, args) => {
      const fields = [field("part_no", "part_no"), field("qty", "qty")];
      if (cmd === "discover_mapping") {
        const rowversion = { setting: "rowversion", field: "updated_at", message: 'rowversion field "updated_at" is in none of the 20 sampled records of "products"; fields found: part_no, qty' };
        return [{ ...view(fields), business_key: ["id"], key_missing: ["id"], key_candidates: ["part_no"], missing: [rowversion], overrides: {} }];
      }
      if (cmd === "preview_mapping") {
        const sent = args as unknown as { overrides: Record<string, Record<string, { key?: boolean }>> };
        previews.push(sent);
        return [{ ...view(fields), business_key: ["part_no"], overrides: sent.overrides.products ?? {} }];
      }
      throw new Error(`unexpected ${cmd}`);
    });
    render(<MappingScreen pipeline="Demo" />);
    const warning = await screen.findByTestId("key-missing");
    expect(screen.getByTestId("missing-rowversion").textContent).toContain('rowversion field "updated_at"');
    expect(warning.textContent).toContain("Business key id is in none of the sampled records");
    fireEvent.click(screen.getByTestId("use-key-part_no"));
    await waitFor(() => expect(screen.queryByTestId("key-missing")).toBeNull());
    expect(previews[0]?.overrides.products).toEqual({ part_no: { key: true } });
  });
});
