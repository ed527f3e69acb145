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

// A conversation page: poll for new messages and delivery reports, and say when some came in.
const POLL_MS = 2000;
const list = document.getElementById("messages");
if (list && list.dataset.updates) {
  let after = Number(list.dataset.after || 0);
  let unseen = 0;
  const notice = document.getElementById("new-messages");
  const takenOver = document.getElementById("reply-form") !== null;
  const line = (text, cls) => {
    const el = document.createElement("div");
    el.className = cls;
    el.textContent = text;
    return el;
  };
  const add = (m) => {
    const item = document.createElement("li");
    item.id = "m" + m.id;
    item.className = (m.direction === "in" ? "inbound" : "outbound") + (m.staff ? " staff" : "")
      + (m.direction === "in" && m.intent === "red_flag" ? " flagged" : "");
    let who = `${m.author}${m.staff ? " (staff)" : ""} · ${m.channel} · ${m.at} UTC`;
    if (m.language) who += ` · ${m.language.toUpperCase()}`;
    if (m.direction === "in" && m.intent) who += ` · ${m.intent}`;
    const head = line(who, "who");
    if (m.staff) {
      const status = document.createElement("span");
      status.className = "delivery";
      status.dataset.id = m.id;
      status.textContent = m.status || "not confirmed";
      head.append(" · ", status);
    }
    const empty = m.held ? "(nothing sent: taken over)" : "(nothing sent)";
    item.append(head, line(m.body || empty, "body"));
    list.append(item);
  };
  const poll = async () => {
    try {
      const response = await fetch(`${list.dataset.updates}?after=${after}`,
                                   { headers: { Accept: "application/json" } });
      if (!response.ok) return;
      const data = await response.json();
      for (const m of data.messages) {
        if (document.getElementById("m" + m.id)) continue;
        add(m);
        after = Math.max(after, m.id);
        if (m.direction === "in") unseen += 1;
      }
      for (const [id, status] of Object.entries(data.statuses)) {
        const span = list.querySelector(`.delivery[data-id="${id}"]`);
        if (span && status) span.textContent = status;
      }
      if (unseen && notice) {
        notice.textContent = `${unseen} new message${unseen > 1 ? "s" : ""} from the patient.`;
        notice.hidden = false;
        document.title = `(${unseen}) ` + document.title.replace(/^\(\d+\) /, "");
      }
      if (takenOver && !data.taken_over) window.location.reload();  // handed back meanwhile
    } catch {
      // the next poll tries again
    }
  };
  setInterval(poll, POLL_MS);
}
