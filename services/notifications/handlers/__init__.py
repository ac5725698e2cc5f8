"""Application layer: one async function per event or use case, taking a unit of work
(never committing it). ``projection`` keeps the contact projection of clients.events,
``triggers`` turns events into messages, ``held`` releases and settles triggers that
came before their client, ``receipts`` applies delivery reports, ``opt_outs`` records
opt-outs and replies, ``operator`` is what an operator asks over HTTP."""
