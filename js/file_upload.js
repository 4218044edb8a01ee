// Upload buttons and drop targets for the pack's file combos (meshes, depth .npz).
//
// A combo made with nodes/_comfy.py `file_combo` carries {"insertanywhere_upload": {"suffixes": [...]}} in
// its input spec. Such a node gets a button per combo ("choose ... to upload"), and a file of those types
// dropped on the node is uploaded the same way: POST /upload/image (which stores any file type in
// ComfyUI/input), then the combo lists and picks it. Other dropped files are left to the frontend (a
// workflow .json or .png still loads as a workflow).
//
// The buttons are never serialized and come after every other widget, so widgets_values keep the
// order of the node's inputs (a public contract; the templates are built from it).
// Video and image combos use the frontend's own upload widget instead (`upload=io.UploadType.video`).
import { api } from "../../scripts/api.js";
import { app } from "../../scripts/app.js";
import { acceptAttribute, routeDrop, uploadedName } from "./input_logic.js";

const UPLOAD_KEY = "insertanywhere_upload";

/** [{name, suffixes}] of a node definition's upload combos. */
function uploadInputs(nodeData) {
  const found = [];
  for (const section of ["required", "optional"]) {
    for (const [name, spec] of Object.entries(nodeData?.input?.[section] ?? {})) {
      const suffixes = spec?.[1]?.[UPLOAD_KEY]?.suffixes;
      if (Array.isArray(suffixes) && suffixes.length) found.push({ name, suffixes });
    }
  }
  return found;
}

function notify(summary, detail, severity = "error") {
  const toast = app.extensionManager?.toast;
  if (toast?.add) toast.add({ severity, summary, detail, life: 8000 });
  else console[severity === "error" ? "error" : "info"](`${summary}: ${detail}`);
}

/** Store `file` in ComfyUI/input (POST /upload/image takes any type) and return its combo value. */
async function uploadFile(file) {
  const body = new FormData();
  body.append("image", file); // the form field /upload/image reads, whatever the file is
  body.append("type", "input");
  const res = await api.fetchApi("/upload/image", { method: "POST", body });
  if (res.status !== 200) throw new Error(`the server answered ${res.status} ${res.statusText}`);
  return uploadedName(await res.json());
}

/** Upload `file` and pick it in the node's combo `input.name`. */
async function uploadInto(node, input, file) {
  const combo = node.widgets?.find((w) => w.name === input.name);
  if (!combo) return;
  let name;
  try {
    name = await uploadFile(file);
  } catch (err) {
    notify("Upload failed", `${file.name}: ${err.message}`);
    return;
  }
  const values = combo.options?.values;
  if (Array.isArray(values) && !values.includes(name)) values.push(name); // listed without a page refresh
  combo.value = name;
  combo.callback?.(name);
  node.graph?.setDirtyCanvas?.(true, true);
  node.onUploaded?.(input.name, name); // for tests and other extensions
}

function addButton(node, input) {
  const picker = document.createElement("input");
  picker.type = "file";
  picker.accept = acceptAttribute(input.suffixes);
  picker.style.display = "none";
  picker.addEventListener("change", () => {
    const file = picker.files?.[0];
    picker.value = "";
    if (file) uploadInto(node, input, file);
  });
  document.body.append(picker);
  const button = node.addWidget("button", `upload_${input.name}`, null, () => picker.click(), { serialize: false });
  button.serialize = false;
  button.label = `choose ${input.name} to upload (${input.suffixes.join(" ")})`;
  button.tooltip = `Upload a ${input.suffixes.join(", ")} file into ComfyUI/input and pick it; or drop it on the node.`;
  button.picker = picker;
  return picker;
}

function attach(node, inputs) {
  const pickers = inputs.map((input) => addButton(node, input));
  const onDragOver = node.onDragOver;
  node.onDragOver = function (e) {
    // names are hidden until the drop; any file may be one of ours
    const items = Array.from(e?.dataTransfer?.items ?? []);
    return items.some((i) => i.kind === "file") || !!onDragOver?.apply(this, arguments);
  };
  const onDragDrop = node.onDragDrop;
  node.onDragDrop = async function (e) {
    const target = routeDrop(e?.dataTransfer?.files, inputs);
    if (!target) return (await onDragDrop?.apply(this, arguments)) ?? false; // the frontend handles it
    e.preventDefault?.();
    await uploadInto(this, target.input, target.file);
    return true;
  };
  const onRemoved = node.onRemoved;
  node.onRemoved = function () {
    for (const picker of pickers) picker.remove();
    return onRemoved?.apply(this, arguments);
  };
}

app.registerExtension({
  name: "InsertAnywhere.FileUpload",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    const inputs = uploadInputs(nodeData);
    if (!inputs.length) return;
    const onNodeCreated = nodeType.prototype.onNodeCreated;
    nodeType.prototype.onNodeCreated = function () {
      const r = onNodeCreated?.apply(this, arguments);
      attach(this, inputs);
      return r;
    };
  },
});
