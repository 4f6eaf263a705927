// The customer area without JavaScript is complete; this only turns the confirmation pages into
// dialogs (htmx loads their content into <dialog id="dialog">) and closes them on Cancel.
"use strict";

document.addEventListener("htmx:afterSwap", (event) => {
  const dialog = event.detail.target;
  if (dialog instanceof HTMLDialogElement && !dialog.open) {
    dialog.showModal();
    const first = dialog.querySelector("[autofocus]");
    if (first) first.focus();
  }
});

document.addEventListener("click", (event) => {
  const close = event.target.closest("[data-close-dialog]");
  const dialog = close && close.closest("dialog");
  if (dialog) {
    event.preventDefault();
    dialog.close();
  }
});

document.addEventListener("close", (event) => {
  if (event.target instanceof HTMLDialogElement) event.target.replaceChildren();
}, true);

// Copy buttons of the Sending domains page: copy the named field's text in one click. Without
// JavaScript the fields are still read-only text to select.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-copy]");
  if (!button) return;
  const field = document.getElementById(button.dataset.copy);
  if (!field) return;
  try {
    await navigator.clipboard.writeText(field.value);
  } catch {
    field.select();
    document.execCommand("copy");
  }
  const label = button.textContent;
  button.textContent = button.dataset.done;
  setTimeout(() => { button.textContent = label; }, 1500);
});
