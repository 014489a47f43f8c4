package config

import (
	"net/url"
	"strings"
)

// libpq's environment variables and the connection keywords they stand for.
// backup-push builds its connection string from these so that values from
// an envdir reach the server session exactly as the process environment
// would reach psql.
var pgVars = []struct{ env, keyword string }{
	{"PGHOST", "host"},
	{"PGHOSTADDR", "hostaddr"},
	{"PGPORT", "port"},
	{"PGDATABASE", "dbname"},
	{"PGUSER", "user"},
	{"PGPASSWORD", "password"},
	{"PGPASSFILE", "passfile"},
	{"PGSERVICE", "service"},
	{"PGSERVICEFILE", "servicefile"},
	{"PGSSLMODE", "sslmode"},
	{"PGSSLCERT", "sslcert"},
	{"PGSSLKEY", "sslkey"},
	{"PGSSLROOTCERT", "sslrootcert"},
	{"PGSSLPASSWORD", "sslpassword"},
	{"PGCONNECT_TIMEOUT", "connect_timeout"},
	{"PGAPPNAME", "application_name"},
	{"PGTARGETSESSIONATTRS", "target_session_attrs"},
}

// PGConnString returns a libpq keyword/value connection string from the
// PG* variables. It carries the password, so it must never be logged.
func (e *Env) PGConnString() string {
	var b strings.Builder
	set := map[string]bool{}
	for _, v := range pgVars {
		val, ok := e.Get(v.env)
		if !ok || val == "" {
			continue
		}
		set[v.keyword] = true
		writeKeyword(&b, v.keyword, val)
	}
	if !set["application_name"] {
		writeKeyword(&b, "application_name", "walnut")
	}
	if !set["connect_timeout"] {
		// Without a bound a cron job waits forever on an unreachable host.
		writeKeyword(&b, "connect_timeout", "10")
	}
	return b.String()
}

func writeKeyword(b *strings.Builder, keyword, value string) {
	if b.Len() > 0 {
		b.WriteByte(' ')
	}
	b.WriteString(keyword)
	b.WriteString("='")
	b.WriteString(strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(value))
	b.WriteByte('\'')
}

// DSNHasPassword spots a password in a libpq URL or keyword/value
// connection string (wal-receive refuses one in argv).
func DSNHasPassword(dsn string) bool {
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		_, set := u.User.Password()
		return set || u.Query().Has("password")
	}
	for _, f := range strings.Fields(dsn) {
		if k, _, ok := strings.Cut(f, "="); ok && strings.TrimSpace(k) == "password" {
			return true
		}
	}
	return strings.Contains(dsn, "password =") || strings.Contains(dsn, "password=")
}
