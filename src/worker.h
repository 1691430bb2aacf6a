/*-------------------------------------------------------------------------
 *
 * worker.h
 *		Declarations shared by the files of the OneLogin background worker.
 *
 * The worker is split the way pg_cron separates its launcher from its job
 * runner:
 *
 *	worker_launcher.c	GUCs, shared memory, registration, the launcher
 *						process and the SQL functions that talk to them
 *	worker_loop.c		the worker process: main loop and scheduling
 *	worker_state.c		transactions, saved plans, reading connections and
 *						committing outcomes (success, failure, back-off)
 *	worker_token.c		the access token and the requests made with it
 *	worker_apply.c		applying a batch of users / deletions exactly once
 *	worker_users.c		the users pages of a run (GET /api/2/users)
 *	worker_reconcile.c	the check of unseen ids after a full run
 *	worker_events.c		deletions (GET /api/1/events)
 *
 *
 * Processes.  Loaded through shared_preload_libraries, _PG_init registers a
 * "scim_provision launcher" (skipped in binary-upgrade mode).  Both the
 * launcher and the worker start only once recovery has finished, so a
 * standby runs neither and a promoted standby starts them.  The launcher
 * connects to no database: every 10 s (or when woken) it looks up
 * scim_provision.database in pg_database and, once that database exists,
 * starts one dynamic "scim_provision worker" connected to it, restarting it
 * 5 s after it stops.  A missing database is reported once and otherwise
 * waited for quietly; there is no FATAL restart loop.  One worker serves
 * every OneLogin connection (workspace) of that database, one after the
 * other: a pull is a few requests a minute per connection, far below what
 * one process handles, and one process keeps the rate limit of a shared
 * OneLogin account in one place.
 *
 * Each cycle the worker opens a short transaction, checks that the
 * extension and its tables exist, taking their locks only conditionally
 * (so DROP EXTENSION is never blocked by an idle worker and the worker never
 * queues behind it), reads the connections and runs the ones that are due:
 * never synced, woken by scim.sync_now/onelogin_connect, resuming an
 * unfinished run, back-off elapsed, or scim_provision.sync_interval seconds
 * after the last attempt.  Then it sleeps on its latch until the next one
 * is due; SIGHUP reloads the settings and wakes it.
 *
 * A sync of one connection:
 *	1. users: GET /api/2/users?fields=...&limit=...[&updated_since=high-water
 *	   mark minus scim_provision.sync_overlap] following After-Cursor.  The
 *	   first run and every scim_provision.reconcile_interval a "full" run
 *	   without updated_since marks every id it sees.  A pass that saw the
 *	   list change under it (Total-Count moved between pages) is listed
 *	   again before the run ends (gap detection, worker_users.c);
 *	2. reconciliation (after a full run): every mapped id the full run did
 *	   not see is checked with GET /api/2/users/{id}; 404 deprovisions it,
 *	   200 applies it (a page shifted under the cursor);
 *	3. deletions: GET /api/1/events?event_type_id=17&since=... following
 *	   pagination.after_cursor; each deleted user we provisioned goes through
 *	   scim.deprovision_user.
 *
 * Exactly once.  No transaction is open during HTTP.  Each page is applied
 * in one transaction together with the cursor of the next page, the run's
 * high-water mark and the counters in scim.onelogin_state, so a crash or
 * kill -9 resumes at the first uncommitted page.  scim.onelogin_users keeps
 * (OneLogin id, updated_at, outcome) of every user applied; a user whose
 * updated_at is unchanged is not applied again, which makes the overlap
 * window and a replayed page no-ops (a refused or failed user is retried by
 * full runs).  scim.sync_now() is satisfied only by a users run that starts
 * after it, so a change made before the call is never skipped by a run
 * already past that user's page.
 *
 * Faults.  429 waits for Retry-After (or X-RateLimit-Reset) and does not
 * count as a failure; 5xx, timeouts, transport errors and malformed or
 * truncated JSON back off exponentially with jitter up to
 * scim_provision.max_backoff, and the page is fetched again (nothing of it
 * was applied).  The exponent is the number of consecutive failures: every
 * page that succeeds resets it.  The access token is kept in memory
 * until it expires and minted again once on a 401; a 401 on a fresh token,
 * refused credentials or another 4xx mark the connection "failing" (retried
 * with back-off).  Every failure is written to the System Log with source
 * 'onelogin' through scim.log_attempt; every user attempt is logged by
 * scim.provision_user / scim.deprovision_user themselves.
 *
 * Secrets.  client_secret is read from scim.onelogin_connections (no grants)
 * only to mint a token and wiped right after; the token lives only in this
 * process's memory.  Neither is ever put in a log line, an error, the
 * System Log or pg_stat_activity (which shows the phase only).  Nothing of
 * an error response is copied either: only its status and, when it names
 * one, a documented OneLogin error (onelogin_error_reason), so a server
 * that echoes the request cannot put the credentials in a log.
 *
 * src/worker.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SCIM_WORKER_H
#define SCIM_WORKER_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "executor/spi.h"
#include "nodes/pg_list.h"
#include "storage/latch.h"
#include "storage/spin.h"

#include "onelogin.h"

/* How long the launcher waits before starting a stopped worker again. */
#define WORKER_RESTART_MS		5000
/* How often the launcher and an idle worker look for the database/extension. */
#define RECHECK_MS				10000
/* Longest wait a 429 may impose (Retry-After beyond this is clamped). */
#define MAX_RATE_LIMIT_WAIT_S	3600
/* Unseen ids checked per reconciliation step. */
#define VERIFY_BATCH			50
/* Passes listed again in one attempt before the run is given a back-off. */
#define MAX_RELISTS				3
/* Mint a token again this long before OneLogin says it expires. */
#define TOKEN_MARGIN_S			60

#define USER_FIELDS "id,username,email,firstname,lastname,title,phone,company,department," \
	"status,state,updated_at,custom_attributes"

/* ---------- GUCs (worker_launcher.c) ---------- */

extern char *scim_worker_database;
extern int	scim_sync_interval;
extern int	scim_connect_timeout;
extern int	scim_request_timeout;
extern int	scim_page_size;
extern int	scim_max_backoff;
extern bool scim_allow_http;
extern int	scim_reconcile_interval;
extern int	scim_sync_overlap;
extern bool scim_gap_detection;
extern char *scim_onelogin_user_type_attribute;
extern char *scim_onelogin_inactive_statuses;
extern char *scim_onelogin_inactive_states;

/* ---------- shared memory (worker_launcher.c) ---------- */

typedef struct ScimWorkerShared
{
	slock_t		mutex;
	pid_t		launcher_pid;
	Latch	   *launcher_latch;
	pid_t		worker_pid;
	Latch	   *worker_latch;
	char		workspace[NAMEDATALEN];	/* being synced; "" when none */
	char		phase[96];
	TimestampTz phase_since;
} ScimWorkerShared;

extern ScimWorkerShared *scim_shared;

/* ---------- worker-private state ---------- */

#define NULL_TS DT_NOBEGIN

/* One OneLogin connection and its sync state, as read at the cycle start. */
typedef struct Conn
{
	char		workspace[NAMEDATALEN];
	char	   *base_url;
	int64		config_version;
	int64		wake_seq;
	int64		handled_seq;
	TimestampTz last_attempt_at;
	TimestampTz backoff_until;
	int			failures;
	char	   *run_cursor;		/* non-NULL: a users run is in progress */
	bool		run_full;
	int64		run_id;
	int			run_pages;		/* pages of the run committed so far */
	int64		run_total;		/* Total-Count of the pass's last page, -1 */
	bool		run_shifted;	/* the pass saw the list change under it */
	int			run_relists;	/* passes listed again in this run */
	TimestampTz run_since;
	TimestampTz run_started_at;
	TimestampTz users_high_water;
	int64		verify_run;		/* -1: no reconciliation pending */
	TimestampTz last_reconcile_at;
	char	   *events_cursor;	/* non-NULL: an events run is in progress */
	TimestampTz events_since;
	TimestampTz events_high_water;
} Conn;

typedef enum FailKind
{
	FAIL_TRANSIENT,				/* 5xx, timeout, transport, malformed: back off */
	FAIL_RATE_LIMIT,			/* 429: wait as told */
	FAIL_AUTH,					/* credentials or token refused: failing */
	FAIL_PERMANENT,				/* other 4xx, configuration: failing */
	FAIL_PAUSE					/* rate budget used up: wait, not a failure */
} FailKind;

typedef enum FetchResult
{
	FETCH_OK,
	FETCH_NOT_FOUND,
	FETCH_FAILED,				/* failure recorded */
	FETCH_ABANDONED				/* connection changed or extension gone */
} FetchResult;

typedef enum RunResult
{
	RUN_DONE,
	RUN_STOPPED,				/* failure recorded; retried later */
	RUN_ABANDONED				/* not ready / reconfigured: re-read state */
} RunResult;

/* ---------- worker_loop.c ---------- */

extern MemoryContext WorkerContext;
extern MemoryContext CycleContext;
extern MemoryContext PageContext;

extern void set_phase(const char *workspace, const char *fmt,...) pg_attribute_printf(2, 3);

/* ---------- worker_state.c ---------- */

extern Datum text_datum(const char *s);
extern Datum int8_array(const int64 *vals, int n);
extern Datum text_array(char *const *vals, int n);
extern char *get_text(HeapTuple tup, TupleDesc desc, int col);
extern int64 get_int8(HeapTuple tup, TupleDesc desc, int col, int64 dflt);
extern int32 get_int4(HeapTuple tup, TupleDesc desc, int col, int32 dflt);
extern TimestampTz get_ts(HeapTuple tup, TupleDesc desc, int col);
extern void ts_param(TimestampTz ts, Datum *value, char *null);
extern void text_param(const char *s, Datum *value, char *null);

extern bool tx_begin(void);
extern void tx_commit(void);
extern void tx_abort(void);
extern SPIPlanPtr get_plan(SPIPlanPtr *slot, const char *sql, int nargs, Oid *argtypes);
extern int	run_plan(SPIPlanPtr plan, const char *sql, Datum *values, const char *nulls, int expect);
extern bool run_guarded(SPIPlanPtr plan, const char *sql, Datum *values, const char *nulls,
						char **errmsg);

/* a plan kept in *slot, prepared on first use: PLAN(slot, sql, argtype, ...) */
#define PLAN(slot, sql, ...) \
	get_plan(&(slot), (sql), lengthof(((Oid[]){__VA_ARGS__})), (Oid[]){__VA_ARGS__})

extern bool load_connections(List **conns);
extern bool lock_state(Conn *c);
extern void log_attempt(Conn *c, const char *method, const char *path, const char *user_name,
						int status, const char *detail);
extern void record_success(Conn *c);
extern void record_failure(Conn *c, FailKind kind, int status, const char *method, const char *path,
						   int wait_s, const char *detail);

/* ---------- worker_token.c ---------- */

extern FetchResult fetch(Conn *c, const char *url, const char *path, OneLoginResponse *resp);
extern bool rate_budget_exhausted(Conn *c, OneLoginResponse *resp);

/* ---------- worker_apply.c ---------- */

/* Users of a page, unique by id (the last occurrence wins), sorted by id. */
typedef struct PreparedUsers
{
	int			n;
	OneLoginUser **users;
	char	  **json;			/* SCIM User per user */
	bool	   *skip;			/* unchanged since last applied */
	TimestampTz max_updated;	/* NULL_TS when none */
} PreparedUsers;

extern void prepare_users(OneLoginUser *users, int n, PreparedUsers *out);
extern int	apply_users(Conn *c, PreparedUsers *p, bool full, int64 run_id, int *created);
extern int	deprovision_ids(Conn *c, int64 *ids, int n);

/* ---------- the sync steps ---------- */

extern RunResult sync_users(Conn *c);		/* worker_users.c */
extern RunResult verify_unseen(Conn *c);	/* worker_reconcile.c */
extern RunResult sync_events(Conn *c);		/* worker_events.c */
extern RunResult deletions_during_pass(Conn *c, TimestampTz since, TimestampTz *seen_at,
									   int64 *seen_id, bool *found);	/* worker_events.c */

#endif							/* SCIM_WORKER_H */
