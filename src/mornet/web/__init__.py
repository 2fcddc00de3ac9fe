"""Server-rendered pages: the shared layout, session cookie, CSRF and error pages."""
