import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { clearMocks, mockIPC } from "@tauri-apps/api/mocks";
import { afterEach, describe, expect, it } from "vitest";
import type { ConflictView } from "./bindings";
import { ConflictsScreen } from "./ConflictsScreen";

const conflict: ConflictView = {
  id: 4,
  pipeline: "shop",
  entity: "items",
  table: "items",
  key: { id: 1 },
  fields: [
    { column: "id", source: 1, target: 1, synced: 1, differs: false },
    { column: "name", source: "changed at source", target: "edited in target", synced: "item 1", differs: true },
    { column: "price", source: 2.25, target: 1.25, synced: 1.25, differs: true },
  ],
  status: "open",
  detected_at: "2026-11-22T10:00:00Z",
  source_rowversion: null,
  resolution: null,
};

afterEach(() => {
  cleanup();
  clearMocks();
});

describe("conflicts screen", () => {
  it("shows the sides, highlights differing fields, and applies a field-by-field choice", async () => {
    const calls: unknown[] = [];
    let open = [conflict];
    mockIPC((cmd, args) => {
      if (cmd === "list_conflicts") return open;
      if (cmd === "resolve_conflict") {
        calls.push(args);
        open = [];
        return { ...conflict, status: "resolved", resolution: { by: "ana", at: "now", kind: "fields", chosen: {}, old_values: {}, new_values: {} } };
      }
      return null;
    });
    render(<ConflictsScreen pipeline="shop" />);
    fireEvent.click(await screen.findByText("name, price"));
    const name = await screen.findByTestId("field-name");
    expect(name.className).toContain("differs");
    expect(screen.getByTestId("field-id").className).not.toContain("differs");
    expect(name.textContent).toContain("item 1");
    expect(name.textContent).toContain("changed at source");
    expect(name.textContent).toContain("edited in target");
    // Keep the target's name, take the source's price.
    fireEvent.click(screen.getByTestId("keep-name-target"));
    fireEvent.click(screen.getByTestId("apply-resolution"));
    await waitFor(() => expect(calls).toHaveLength(1));
    expect(calls[0]).toEqual({ id: 4, take: "target", fields: { price: "source" } });
    expect((await screen.findByTestId("conflicts-notice")).textContent).toContain("Conflict 4 resolved (fields)");
    expect((await screen.findByTestId("conflicts-empty")).textContent).toContain("No open conflicts");
  });
});
