"""HTTP intake: the service low-code platforms (n8n, Zapier, Make, Power Automate) call to
apply, pause, resume, query and (through the gate) roll back batches. ``backout serve``."""
