"""Development tools, never imported by the serving code: Meta-shaped webhook bodies for
tests and the terminal chat (`flask --app wsgi chat`)."""
