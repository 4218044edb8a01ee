/**
 * Warnings of InsertAnywhere nodes, shown on the node.
 *
 * A node that finished with warnings (nodes/_comfy.py `with_warnings`) sends its summary as the
 * UI output `text`: "N warnings: first; second". It is shown in a read-only box at the bottom of
 * the node until the node runs again without warnings. The same lines are in the server log.
 */

import { app } from "../../scripts/app.js";

const WIDGET_NAME = "ia_warnings";

function showWarnings(node, text) {
  let widget = node.widgets?.find((w) => w.name === WIDGET_NAME);
  if (!text) {
    if (widget) widget.element.textContent = "";
    if (widget) widget.element.style.display = "none";
    return;
  }
  if (!widget) {
    if (typeof node.addDOMWidget !== "function") return;
    const box = document.createElement("div");
    box.className = "ia-warnings";
    Object.assign(box.style, {
      color: "#f0b429", background: "rgba(0,0,0,0.35)", font: "12px sans-serif", padding: "4px 6px",
      whiteSpace: "pre-wrap", overflowY: "auto", maxHeight: "120px", borderRadius: "4px",
    });
    widget = node.addDOMWidget(WIDGET_NAME, "ia-warnings", box, {
      serialize: false, hideOnZoom: false, getValue: () => undefined, setValue: () => {},
    });
    widget.serialize = false;
  }
  widget.element.style.display = "";
  widget.element.textContent = "\u26a0 " + text;
  node.setDirtyCanvas?.(true, true);
}

app.registerExtension({
  name: "InsertAnywhere.NodeWarnings",
  async nodeCreated(node) {
    if (!String(node.comfyClass || "").startsWith("IA_")) return;
    const onExecuted = node.onExecuted;
    node.onExecuted = function (message) {
      const r = onExecuted?.apply(this, arguments);
      const text = Array.isArray(message?.text) ? message.text.join("\n") : message?.text;
      showWarnings(this, text || "");
      return r;
    };
  },
});
