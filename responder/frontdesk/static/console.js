// Copy the suggested reply to the clipboard (a button, no inline script: CSP allows only 'self').
document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const field = document.getElementById(button.dataset.copy);
  try {
    await navigator.clipboard.writeText(field.value);
  } catch {
    field.select();
    document.execCommand("copy");
  }
  const note = document.getElementById("copied");
  if (note) note.hidden = false;
});
