/// The store's schema and its versioned migrations.
///
/// The pending migrations run in one transaction holding a transaction-scoped advisory lock, so two
/// processes that start at once apply each migration exactly once; the applied versions are kept in
/// `<schema>.migrations`.
enum Schema {
    /// Whether `name` is a safe schema name: a lower-case letter or `_`, then letters, digits or `_`,
    /// at most 56 bytes (the notification channel `annals_<schema>` must stay within PostgreSQL's 63).
    /// It is interpolated into SQL, so nothing else is accepted.
    static func isValidName(_ name: String) -> Bool {
        guard let first = name.utf8.first, name.utf8.count <= 56 else { return false }
        let isStart = (0x61...0x7A).contains(first) || first == 0x5F
        return isStart
            && name.utf8.allSatisfy { (0x61...0x7A).contains($0) || (0x30...0x39).contains($0) || $0 == 0x5F }
    }

    /// The migrations, in order, each a list of statements; `$S` stands for the quoted schema name.
    static let migrations: [[String]] = [
        // 1: counter, streams, events, the append function, checkpoints and snapshots.
        [
            """
            CREATE TABLE $S.counter (
                id integer PRIMARY KEY CHECK (id = 1),
                next_position bigint NOT NULL
            );
            """,
            """
            INSERT INTO $S.counter VALUES (1, 0);
            """,
            """
            CREATE TABLE $S.streams (
                creation_order bigserial PRIMARY KEY,
                name text COLLATE "C" NOT NULL UNIQUE,
                last_revision bigint,
                is_deleted boolean NOT NULL DEFAULT false,
                is_tombstoned boolean NOT NULL DEFAULT false,
                metadata bytea
            );
            """,
            """
            CREATE TABLE $S.events (
                position bigint PRIMARY KEY,
                event_id uuid NOT NULL UNIQUE,
                stream_name text COLLATE "C" NOT NULL,
                category text COLLATE "C" NOT NULL,
                revision bigint NOT NULL,
                type text COLLATE "C" NOT NULL,
                content_type smallint NOT NULL,
                data bytea NOT NULL,
                metadata bytea NOT NULL,
                recorded_at timestamptz NOT NULL,
                UNIQUE (stream_name, revision)
            );
            """,
            """
            CREATE INDEX events_category ON $S.events (category, position);
            """,
            """
            CREATE INDEX events_type ON $S.events (type, position);
            """,
            """
            CREATE TABLE $S.checkpoints (
                name text PRIMARY KEY,
                checkpoint bigint NOT NULL,
                updated_at timestamptz NOT NULL DEFAULT now()
            );
            """,
            """
            CREATE TABLE $S.snapshots (
                stream text COLLATE "C" PRIMARY KEY,
                revision bigint NOT NULL,
                schema_version integer NOT NULL,
                state bytea NOT NULL,
                taken_at timestamptz NOT NULL
            );
            """,
            """
            -- Appends one batch at p_position, inside the caller's transaction, which holds the counter
            -- row's lock (so positions are allocated in commit order). Returns a status:
            --   0 written (first revision), 1 already written: an idempotent retry (original first
            --   revision and position), 2 wrong expected revision (actual revision), 3 tombstoned,
            --   4 duplicate event id (the id).
            -- p_expected_kind: 0 any, 1 no stream, 2 stream exists, 3 exact (p_expected).
            CREATE FUNCTION $S.append_events(
                p_stream text, p_category text, p_expected_kind integer, p_expected bigint, p_position bigint,
                p_ids uuid[], p_types text[], p_content smallint[], p_data bytea[], p_metadata bytea[],
                p_recorded_at timestamptz
            ) RETURNS TABLE (status integer, first_revision bigint, first_position bigint, actual_revision bigint,
                             conflict_id uuid)
            LANGUAGE plpgsql AS $$
            DECLARE
                n integer := cardinality(p_ids);
                found_count integer;
                stored RECORD;
                original_revision bigint;
                original_position bigint;
                s RECORD;
            BEGIN
                SELECT count(*) INTO found_count FROM $S.events WHERE event_id = ANY(p_ids);
                IF found_count > 0 THEN
                    original_revision := NULL;
                    FOR stored IN
                        SELECT i.ord, i.id, e.stream_name, e.revision, e.position, e.type, e.content_type, e.data, e.metadata
                        FROM unnest(p_ids) WITH ORDINALITY AS i(id, ord)
                        LEFT JOIN $S.events e ON e.event_id = i.id
                        ORDER BY i.ord
                    LOOP
                        IF stored.ord = 1 THEN
                            original_revision := stored.revision;
                            original_position := stored.position;
                        END IF;
                        IF stored.stream_name IS NULL OR stored.stream_name <> p_stream
                            OR original_revision IS NULL OR stored.revision <> original_revision + stored.ord - 1
                            OR stored.type <> p_types[stored.ord] OR stored.content_type <> p_content[stored.ord]
                            OR stored.data <> p_data[stored.ord] OR stored.metadata <> p_metadata[stored.ord] THEN
                            RETURN QUERY SELECT 4, NULL::bigint, NULL::bigint, NULL::bigint,
                                (SELECT x.id FROM unnest(p_ids) AS x(id)
                                 WHERE EXISTS (SELECT 1 FROM $S.events e2 WHERE e2.event_id = x.id) LIMIT 1);
                            RETURN;
                        END IF;
                    END LOOP;
                    RETURN QUERY SELECT 1, original_revision, original_position, NULL::bigint, NULL::uuid;
                    RETURN;
                END IF;

                SELECT * INTO s FROM $S.streams WHERE name = p_stream FOR UPDATE;
                IF NOT FOUND THEN
                    IF p_expected_kind = 2 OR p_expected_kind = 3 THEN
                        RETURN QUERY SELECT 2, NULL::bigint, NULL::bigint, NULL::bigint, NULL::uuid;
                        RETURN;
                    END IF;
                    INSERT INTO $S.streams (name) VALUES (p_stream) ON CONFLICT (name) DO NOTHING;
                    SELECT * INTO s FROM $S.streams WHERE name = p_stream FOR UPDATE;
                END IF;
                IF s.is_tombstoned THEN
                    RETURN QUERY SELECT 3, NULL::bigint, NULL::bigint, s.last_revision, NULL::uuid;
                    RETURN;
                END IF;
                IF NOT (p_expected_kind = 0
                        OR (p_expected_kind = 1 AND (s.last_revision IS NULL OR s.is_deleted))
                        OR (p_expected_kind = 2 AND s.last_revision IS NOT NULL AND NOT s.is_deleted)
                        OR (p_expected_kind = 3 AND s.last_revision IS NOT DISTINCT FROM p_expected)) THEN
                    RETURN QUERY SELECT 2, NULL::bigint, NULL::bigint, s.last_revision, NULL::uuid;
                    RETURN;
                END IF;
                INSERT INTO $S.events (position, event_id, stream_name, category, revision, type, content_type, data,
                                       metadata, recorded_at)
                SELECT p_position + i.ord - 1, i.id, p_stream, p_category, coalesce(s.last_revision + 1, 0) + i.ord - 1,
                       p_types[i.ord], p_content[i.ord], p_data[i.ord], p_metadata[i.ord], p_recorded_at
                FROM unnest(p_ids) WITH ORDINALITY AS i(id, ord);
                UPDATE $S.streams SET last_revision = coalesce(s.last_revision + 1, 0) + n - 1, is_deleted = false
                WHERE name = p_stream;
                RETURN QUERY SELECT 0, coalesce(s.last_revision + 1, 0), p_position, NULL::bigint, NULL::uuid;
            END;
            $$;
            """,
        ],
        // 2: a whole group commit in one statement (one round trip, one commit).
        [
            """
            -- Locks the counter row (held until the statement's transaction ends), appends each append of
            -- the group with append_events' rules, in order, advances the counter and notifies p_channel.
            -- Appends are parallel arrays; their events are concatenated, p_counts[k] of them for append k.
            -- Returns one append_events row per append, in order.
            CREATE FUNCTION $S.append_group(
                p_streams text[], p_categories text[], p_kinds integer[], p_expected bigint[], p_counts integer[],
                p_ids uuid[], p_types text[], p_content smallint[], p_data bytea[], p_metadata bytea[],
                p_recorded_at timestamptz, p_channel text
            ) RETURNS TABLE (status integer, first_revision bigint, first_position bigint, actual_revision bigint,
                             conflict_id uuid)
            LANGUAGE plpgsql AS $$
            DECLARE
                pos bigint;
                start_position bigint;
                o integer := 1;
                c integer;
                r RECORD;
            BEGIN
                -- Each statement below must see what committed before the counter lock was granted.
                IF current_setting('transaction_isolation') <> 'read committed' THEN
                    RAISE EXCEPTION 'append_group needs READ COMMITTED, not %',
                        current_setting('transaction_isolation') USING ERRCODE = 'invalid_transaction_state';
                END IF;
                SELECT counter.next_position INTO pos FROM $S.counter WHERE counter.id = 1 FOR UPDATE;
                start_position := pos;
                FOR k IN 1 .. coalesce(cardinality(p_streams), 0) LOOP
                    c := p_counts[k];
                    SELECT * INTO r FROM $S.append_events(
                        p_streams[k], p_categories[k], p_kinds[k], p_expected[k], pos, p_ids[o : o + c - 1],
                        p_types[o : o + c - 1], p_content[o : o + c - 1], p_data[o : o + c - 1],
                        p_metadata[o : o + c - 1], p_recorded_at);
                    status := r.status;
                    first_revision := r.first_revision;
                    first_position := r.first_position;
                    actual_revision := r.actual_revision;
                    conflict_id := r.conflict_id;
                    IF r.status = 0 THEN
                        pos := pos + c;
                    END IF;
                    RETURN NEXT;
                    o := o + c;
                END LOOP;
                IF pos > start_position THEN
                    UPDATE $S.counter SET next_position = pos WHERE counter.id = 1;
                    PERFORM pg_notify(p_channel, pos::text);
                END IF;
            END;
            $$;
            """
        ],
        // 3: a set-based append_group (one INSERT for a group's events), index-only generic plans, and a
        // procedure that commits inside, so a group commit is one round trip that answers once durable.
        [
            """
            DROP FUNCTION $S.append_group(text[], text[], integer[], bigint[], integer[], uuid[], text[], smallint[], bytea[], bytea[], timestamptz, text);
            """,
            """
            ALTER FUNCTION $S.append_events(text, text, integer, bigint, bigint, uuid[], text[], smallint[], bytea[], bytea[], timestamptz)
                SET plan_cache_mode = force_generic_plan SET enable_seqscan = off SET enable_hashjoin = off
                SET enable_mergejoin = off;
            """,
            """
            -- Appends a whole group of appends in ONE statement (one round trip, one commit in autocommit), or inside
            -- the caller's transaction. It locks the counter row (held until that transaction ends, so positions are
            -- contiguous and in commit order), applies the appends in order with append_events' rules, advances the
            -- counter and notifies p_channel with the new head (delivered on commit).
            -- Appends are parallel arrays, one element per append (p_expected_kinds: 0 any, 1 no stream, 2 stream
            -- exists, 3 exact p_expected); their events are concatenated in the event arrays, p_counts[k] for append k.
            -- Returns one row per append, in order: status 0 written (first revision and position), 1 already written,
            -- an idempotent retry (the original first revision and position), 2 wrong expected revision (actual
            -- revision), 3 tombstoned, 4 duplicate event id (conflict_id); next_position is the counter after that
            -- append (the last row's is the group's head). Needs READ COMMITTED (each statement's snapshot is taken
            -- after the counter lock is held).
            CREATE FUNCTION $S.append_group(
                p_streams text[], p_categories text[], p_expected_kinds integer[], p_expected bigint[], p_counts integer[],
                p_ids uuid[], p_types text[], p_content smallint[], p_data bytea[], p_metadata bytea[],
                p_recorded_at timestamptz, p_channel text
            ) RETURNS TABLE (status integer, first_revision bigint, first_position bigint, actual_revision bigint,
                             conflict_id uuid, next_position bigint)
            LANGUAGE plpgsql
            -- One generic plan per statement and session, planned once, and never a scan of a table or a hash or
            -- merge join: every statement here reaches a few rows through unique indexes, from the group's own
            -- arrays. Costed on a table that was empty when the plan was made, a sequential scan (or a hash
            -- join over a whole index) would look cheaper, and the session would keep it as the table grows.
            SET plan_cache_mode = force_generic_plan
            SET enable_seqscan = off
            SET enable_hashjoin = off
            SET enable_mergejoin = off
            AS $$
            DECLARE
                n integer := coalesce(cardinality(p_streams), 0);
                start_position bigint;
                pos bigint;
                o integer := 1;
                c integer;
                r integer;
                kind integer;
                -- set-based path: reps[k] is the group's first append to append k's stream; that stream's state is
                -- kept at index reps[k] while the group's appends change it
                reps integer[];
                st_exists boolean[];
                st_last bigint[];
                st_deleted boolean[];
                st_tombstoned boolean[];
                st_written boolean[];
                offsets integer[];
                event_append integer[] := '{}';
                r_status integer[];
                r_first_revision bigint[];
                r_first_position bigint[];
                r_actual bigint[];
                r_next bigint[];
                -- one-by-one path: append_events' row for one append
                one RECORD;
            BEGIN
                IF current_setting('transaction_isolation') <> 'read committed' THEN
                    RAISE EXCEPTION 'append_group needs READ COMMITTED, not %', current_setting('transaction_isolation')
                        USING ERRCODE = 'invalid_transaction_state';
                END IF;
                IF n = 0 THEN
                    RETURN;
                END IF;
                SELECT c0.next_position INTO start_position FROM $S.counter c0 WHERE c0.id = 1 FOR UPDATE;
                pos := start_position;

                IF n < 8 OR EXISTS (SELECT 1 FROM $S.events WHERE event_id = ANY(p_ids))
                   OR (SELECT count(DISTINCT x) FROM unnest(p_ids) AS x) <> cardinality(p_ids) THEN
                    -- One by one through append_events: small groups, retries, ids repeated within the group.
                    FOR k IN 1 .. n LOOP
                        c := p_counts[k];
                        SELECT * INTO one FROM $S.append_events(
                            p_streams[k], p_categories[k], p_expected_kinds[k], p_expected[k], pos, p_ids[o : o + c - 1],
                            p_types[o : o + c - 1], p_content[o : o + c - 1], p_data[o : o + c - 1],
                            p_metadata[o : o + c - 1], p_recorded_at);
                        IF one.status = 0 THEN
                            pos := pos + c;
                        END IF;
                        status := one.status;
                        first_revision := one.first_revision;
                        first_position := one.first_position;
                        actual_revision := one.actual_revision;
                        conflict_id := one.conflict_id;
                        next_position := pos;
                        RETURN NEXT;
                        o := o + c;
                    END LOOP;
                ELSE
                    -- Set-based, for 8+ appends whose ids are all new: create the streams a kind 0/1 append may
                    -- create (in append order, as one by one would), lock and read every stream of the group, decide
                    -- each append in memory, then one INSERT for all events and one UPDATE for all streams.
                    INSERT INTO $S.streams (name)
                    SELECT a.name FROM unnest(p_streams, p_expected_kinds) WITH ORDINALITY AS a(name, kind, k)
                    WHERE a.kind IN (0, 1) AND NOT EXISTS (SELECT 1 FROM $S.streams s2 WHERE s2.name = a.name)
                    GROUP BY a.name ORDER BY min(a.k)
                    ON CONFLICT (name) DO NOTHING;

                    SELECT array_agg(a.rep ORDER BY a.k), array_agg(l.name IS NOT NULL ORDER BY a.k),
                           array_agg(l.last_revision ORDER BY a.k), array_agg(l.is_deleted ORDER BY a.k),
                           array_agg(l.is_tombstoned ORDER BY a.k)
                    INTO reps, st_exists, st_last, st_deleted, st_tombstoned
                    FROM (SELECT u.name, u.k, min(u.k) OVER (PARTITION BY u.name) AS rep
                          FROM unnest(p_streams) WITH ORDINALITY AS u(name, k)) AS a
                    LEFT JOIN (SELECT s2.name, s2.last_revision, s2.is_deleted, s2.is_tombstoned
                               FROM $S.streams s2 WHERE s2.name = ANY(p_streams) FOR UPDATE) AS l ON l.name = a.name;
                    st_written := array_fill(false, ARRAY[n]);
                    -- filled to length n, so that assignments keep subscripts 1..n (an assignment to an empty
                    -- array would start it at that subscript)
                    offsets := array_fill(NULL::integer, ARRAY[n]);
                    r_status := array_fill(NULL::integer, ARRAY[n]);
                    r_first_revision := array_fill(NULL::bigint, ARRAY[n]);
                    r_first_position := array_fill(NULL::bigint, ARRAY[n]);
                    r_actual := array_fill(NULL::bigint, ARRAY[n]);
                    r_next := array_fill(NULL::bigint, ARRAY[n]);

                    FOR k IN 1 .. n LOOP
                        c := p_counts[k];
                        r := reps[k];
                        kind := p_expected_kinds[k];
                        offsets[k] := o;
                        IF NOT st_exists[r] THEN
                            r_status[k] := 2;
                        ELSIF st_tombstoned[r] THEN
                            r_status[k] := 3;
                            r_actual[k] := st_last[r];
                        ELSIF NOT (kind = 0
                                   OR (kind = 1 AND (st_last[r] IS NULL OR st_deleted[r]))
                                   OR (kind = 2 AND st_last[r] IS NOT NULL AND NOT st_deleted[r])
                                   OR (kind = 3 AND st_last[r] IS NOT DISTINCT FROM p_expected[k])) THEN
                            r_status[k] := 2;
                            r_actual[k] := st_last[r];
                        ELSE
                            r_status[k] := 0;
                            r_first_revision[k] := coalesce(st_last[r] + 1, 0);
                            r_first_position[k] := pos;
                            st_last[r] := coalesce(st_last[r] + 1, 0) + c - 1;
                            st_deleted[r] := false;
                            st_written[r] := true;
                            pos := pos + c;
                        END IF;
                        r_next[k] := pos;
                        event_append := event_append || array_fill(k, ARRAY[c]);
                        o := o + c;
                    END LOOP;

                    IF pos > start_position THEN
                        INSERT INTO $S.events (position, event_id, stream_name, category, revision, type, content_type, data,
                                               metadata, recorded_at)
                        SELECT r_first_position[e.k] + (e.ord - offsets[e.k]), e.id, p_streams[e.k], p_categories[e.k],
                               r_first_revision[e.k] + (e.ord - offsets[e.k]), e.type, e.content, e.data, e.metadata,
                               p_recorded_at
                        FROM unnest(event_append, p_ids, p_types, p_content, p_data, p_metadata)
                             WITH ORDINALITY AS e(k, id, type, content, data, metadata, ord)
                        WHERE r_status[e.k] = 0;
                        UPDATE $S.streams s2 SET last_revision = u.last, is_deleted = false
                        FROM unnest(p_streams, reps, st_last, st_written) WITH ORDINALITY AS u(name, rep, last, written, k)
                        WHERE u.k = u.rep AND u.written AND s2.name = u.name;
                    END IF;
                    RETURN QUERY
                        SELECT u.st, u.fr, u.fp, u.ar, NULL::uuid, u.nx
                        FROM unnest(r_status, r_first_revision, r_first_position, r_actual, r_next)
                             WITH ORDINALITY AS u(st, fr, fp, ar, nx, k)
                        ORDER BY u.k;
                END IF;

                IF o - 1 <> cardinality(p_ids) THEN
                    RAISE EXCEPTION 'append_group: p_counts add up to %, p_ids has % ids', o - 1, cardinality(p_ids);
                END IF;
                IF pos > start_position THEN
                    UPDATE $S.counter SET next_position = pos WHERE id = 1;
                    PERFORM pg_notify(p_channel, pos::text);
                END IF;
            END;
            $$;
            """,
            """
            -- append_group, committed before the reply: CALL it in autocommit (not inside a transaction block). The
            -- COMMIT inside makes the reply mean "durable and visible" (in autocommit, a plain statement's result
            -- reaches the client before the commit, which happens at Sync). One row, arrays in append order, no
            -- NULL elements: -1 for "none" in the bigint arrays, the nil UUID for no conflict.
            CREATE PROCEDURE $S.append_group_commit(
                p_streams text[], p_categories text[], p_expected_kinds integer[], p_expected bigint[], p_counts integer[],
                p_ids uuid[], p_types text[], p_content smallint[], p_data bytea[], p_metadata bytea[],
                p_recorded_at timestamptz, p_channel text,
                INOUT statuses integer[] DEFAULT NULL, INOUT first_revisions bigint[] DEFAULT NULL,
                INOUT first_positions bigint[] DEFAULT NULL, INOUT actual_revisions bigint[] DEFAULT NULL,
                INOUT conflict_ids uuid[] DEFAULT NULL, INOUT head bigint DEFAULT NULL
            )
            LANGUAGE plpgsql AS $$
            BEGIN
                SELECT array_agg(g.status ORDER BY g.ord), array_agg(coalesce(g.first_revision, -1) ORDER BY g.ord),
                       array_agg(coalesce(g.first_position, -1) ORDER BY g.ord),
                       array_agg(coalesce(g.actual_revision, -1) ORDER BY g.ord),
                       array_agg(coalesce(g.conflict_id, '00000000-0000-0000-0000-000000000000') ORDER BY g.ord),
                       (array_agg(g.next_position ORDER BY g.ord DESC))[1]
                INTO statuses, first_revisions, first_positions, actual_revisions, conflict_ids, head
                FROM $S.append_group(p_streams, p_categories, p_expected_kinds, p_expected, p_counts, p_ids, p_types,
                                     p_content, p_data, p_metadata, p_recorded_at, p_channel) WITH ORDINALITY
                     AS g(status, first_revision, first_position, actual_revision, conflict_id, next_position, ord);
                COMMIT;
            END;
            $$;
            """,
        ],
        // 4: a group of one append in four statements (append_one, append_one_commit), the case of a writer
        // awaiting each append.
        [
            """
            -- One append, the whole group when a group has one (the case of a writer awaiting each append):
            -- four statements instead of append_group's eleven. Advances the counter first (taking its lock until
            -- the transaction ends), so a refused append must be rolled back by the caller. status as
            -- append_events, or -1: an id was seen before, or the stream was created meanwhile; the caller rolls
            -- back and appends through append_group, whose rules cover retries.
            CREATE FUNCTION $S.append_one(
                p_stream text, p_category text, p_kind integer, p_expected bigint, p_ids uuid[], p_types text[],
                p_content smallint[], p_data bytea[], p_metadata bytea[], p_recorded_at timestamptz, p_channel text
            ) RETURNS TABLE (status integer, first_revision bigint, first_position bigint, actual_revision bigint,
                             next_position bigint)
            LANGUAGE plpgsql
            SET plan_cache_mode = force_generic_plan
            SET enable_seqscan = off
            SET enable_hashjoin = off
            SET enable_mergejoin = off
            AS $$
            DECLARE
                n integer := cardinality(p_ids);
                start_position bigint;
                last bigint;
                s RECORD;
            BEGIN
                IF current_setting('transaction_isolation') <> 'read committed' THEN
                    RAISE EXCEPTION 'append_one needs READ COMMITTED, not %', current_setting('transaction_isolation')
                        USING ERRCODE = 'invalid_transaction_state';
                END IF;
                UPDATE $S.counter c0 SET next_position = c0.next_position + n WHERE c0.id = 1
                RETURNING c0.next_position - n INTO start_position;
                IF EXISTS (SELECT 1 FROM $S.events e WHERE e.event_id = ANY(p_ids)) THEN
                    RETURN QUERY SELECT -1, NULL::bigint, NULL::bigint, NULL::bigint, start_position;
                    RETURN;
                END IF;
                UPDATE $S.streams s2 SET last_revision = coalesce(s2.last_revision + 1, 0) + n - 1, is_deleted = false
                WHERE s2.name = p_stream AND NOT s2.is_tombstoned
                  AND (p_kind = 0
                       OR (p_kind = 1 AND (s2.last_revision IS NULL OR s2.is_deleted))
                       OR (p_kind = 2 AND s2.last_revision IS NOT NULL AND NOT s2.is_deleted)
                       OR (p_kind = 3 AND s2.last_revision IS NOT DISTINCT FROM p_expected))
                RETURNING s2.last_revision INTO last;
                IF NOT FOUND THEN
                    SELECT s2.last_revision, s2.is_tombstoned INTO s FROM $S.streams s2 WHERE s2.name = p_stream FOR UPDATE;
                    IF FOUND THEN
                        RETURN QUERY SELECT CASE WHEN s.is_tombstoned THEN 3 ELSE 2 END, NULL::bigint, NULL::bigint,
                            s.last_revision, start_position;
                        RETURN;
                    ELSIF p_kind IN (2, 3) THEN
                        RETURN QUERY SELECT 2, NULL::bigint, NULL::bigint, NULL::bigint, start_position;
                        RETURN;
                    END IF;
                    INSERT INTO $S.streams (name, last_revision) VALUES (p_stream, n - 1) ON CONFLICT (name) DO NOTHING;
                    IF NOT FOUND THEN
                        RETURN QUERY SELECT -1, NULL::bigint, NULL::bigint, NULL::bigint, start_position;
                        RETURN;
                    END IF;
                    last := n - 1;
                END IF;
                INSERT INTO $S.events (position, event_id, stream_name, category, revision, type, content_type, data, metadata,
                                       recorded_at)
                SELECT start_position + i.ord - 1, i.id, p_stream, p_category, last - n + i.ord, p_types[i.ord], p_content[i.ord],
                       p_data[i.ord], p_metadata[i.ord], p_recorded_at
                FROM unnest(p_ids) WITH ORDINALITY AS i(id, ord);
                PERFORM pg_notify(p_channel, (start_position + n)::text);
                RETURN QUERY SELECT 0, last - n + 1, start_position, NULL::bigint, start_position + n;
            END;
            $$;
            """,
            """
            -- append_one, committed before the reply (as append_group_commit does for append_group): COMMIT when it
            -- wrote, ROLLBACK otherwise (append_one advanced the counter first). On -1 the caller appends through
            -- append_group_commit instead. CALL it in autocommit.
            CREATE PROCEDURE $S.append_one_commit(
                p_stream text, p_category text, p_kind integer, p_expected bigint, p_ids uuid[], p_types text[],
                p_content smallint[], p_data bytea[], p_metadata bytea[], p_recorded_at timestamptz, p_channel text,
                INOUT status integer DEFAULT NULL, INOUT first_revision bigint DEFAULT NULL,
                INOUT first_position bigint DEFAULT NULL, INOUT actual_revision bigint DEFAULT NULL,
                INOUT head bigint DEFAULT NULL
            )
            LANGUAGE plpgsql AS $$
            BEGIN
                SELECT o.status, o.first_revision, o.first_position, o.actual_revision, o.next_position
                INTO status, first_revision, first_position, actual_revision, head
                FROM $S.append_one(p_stream, p_category, p_kind, p_expected, p_ids, p_types, p_content, p_data,
                                   p_metadata, p_recorded_at, p_channel) AS o;
                IF status = 0 THEN
                    COMMIT;
                ELSE
                    ROLLBACK;
                END IF;
            END;
            $$;
            """,
        ],
        // 5: append_single, an append of one event as one plpgsql procedure that commits, with no nested function.
        [
            """
            -- The common case of a group of one append of one event, committed before the reply (CALL it in
            -- autocommit): the stream exists and the expectation holds, or the stream is new, and the id is new.
            -- Everything else is left to append_group_commit, whose rules cover it: the procedure rolls back and
            -- answers first_position NULL (a wrong expectation, a tombstone, a stream created meanwhile), or fails
            -- with unique_violation (an id seen before: a retry). Takes the counter's lock first, as append_group does,
            -- so each later statement sees every append committed before it. A procedure that commits cannot have
            -- SET clauses, so append_group's planner settings are SET LOCAL here (they end with the transaction).
            CREATE PROCEDURE $S.append_single(
                p_stream text, p_category text, p_kind integer, p_expected bigint, p_id uuid, p_type text,
                p_content smallint, p_data bytea, p_metadata bytea, p_recorded_at timestamptz, p_channel text,
                INOUT revision bigint DEFAULT NULL, INOUT event_position bigint DEFAULT NULL
            )
            LANGUAGE plpgsql AS $$
            BEGIN
                IF current_setting('transaction_isolation') <> 'read committed' THEN
                    RAISE EXCEPTION 'append_single needs READ COMMITTED, not %', current_setting('transaction_isolation')
                        USING ERRCODE = 'invalid_transaction_state';
                END IF;
                SET LOCAL plan_cache_mode = force_generic_plan;
                SET LOCAL enable_seqscan = off;
                UPDATE $S.counter c0 SET next_position = c0.next_position + 1 WHERE c0.id = 1
                RETURNING c0.next_position - 1 INTO event_position;
                UPDATE $S.streams s2 SET last_revision = coalesce(s2.last_revision + 1, 0), is_deleted = false
                WHERE s2.name = p_stream AND NOT s2.is_tombstoned
                  AND (p_kind = 0
                       OR (p_kind = 1 AND (s2.last_revision IS NULL OR s2.is_deleted))
                       OR (p_kind = 2 AND s2.last_revision IS NOT NULL AND NOT s2.is_deleted)
                       OR (p_kind = 3 AND s2.last_revision IS NOT DISTINCT FROM p_expected))
                RETURNING s2.last_revision INTO revision;
                IF NOT FOUND THEN
                    IF p_kind IN (0, 1) THEN
                        INSERT INTO $S.streams (name, last_revision) VALUES (p_stream, 0) ON CONFLICT (name) DO NOTHING;
                    END IF;
                    IF p_kind NOT IN (0, 1) OR NOT FOUND THEN
                        ROLLBACK;
                        revision := NULL;
                        event_position := NULL;
                        RETURN;
                    END IF;
                    revision := 0;
                END IF;
                INSERT INTO $S.events (position, event_id, stream_name, category, revision, type, content_type, data, metadata,
                                       recorded_at)
                VALUES (event_position, p_id, p_stream, p_category, revision, p_type, p_content, p_data, p_metadata,
                        p_recorded_at);
                PERFORM pg_notify(p_channel, (event_position + 1)::text);
                COMMIT;
            END;
            $$;
            """
        ],
        // 6: append_single without settings of its own, for the connection a store holds for commits.
        [
            """
            -- append_single for a session that has already set what append_single sets in each call: READ COMMITTED,
            -- plan_cache_mode = force_generic_plan and enable_seqscan = off. The connection a store holds for
            -- commits sets them once, when it takes the connection, and calls this as a prepared statement. Same
            -- rules and answers as append_single.
            CREATE PROCEDURE $S.append_single_prepared(
                p_stream text, p_category text, p_kind integer, p_expected bigint, p_id uuid, p_type text,
                p_content smallint, p_data bytea, p_metadata bytea, p_recorded_at timestamptz, p_channel text,
                INOUT revision bigint DEFAULT NULL, INOUT event_position bigint DEFAULT NULL
            )
            LANGUAGE plpgsql AS $$
            BEGIN
                UPDATE $S.counter c0 SET next_position = c0.next_position + 1 WHERE c0.id = 1
                RETURNING c0.next_position - 1 INTO event_position;
                UPDATE $S.streams s2 SET last_revision = coalesce(s2.last_revision + 1, 0), is_deleted = false
                WHERE s2.name = p_stream AND NOT s2.is_tombstoned
                  AND (p_kind = 0
                       OR (p_kind = 1 AND (s2.last_revision IS NULL OR s2.is_deleted))
                       OR (p_kind = 2 AND s2.last_revision IS NOT NULL AND NOT s2.is_deleted)
                       OR (p_kind = 3 AND s2.last_revision IS NOT DISTINCT FROM p_expected))
                RETURNING s2.last_revision INTO revision;
                IF NOT FOUND THEN
                    IF p_kind IN (0, 1) THEN
                        INSERT INTO $S.streams (name, last_revision) VALUES (p_stream, 0) ON CONFLICT (name) DO NOTHING;
                    END IF;
                    IF p_kind NOT IN (0, 1) OR NOT FOUND THEN
                        ROLLBACK;
                        revision := NULL;
                        event_position := NULL;
                        RETURN;
                    END IF;
                    revision := 0;
                END IF;
                INSERT INTO $S.events (position, event_id, stream_name, category, revision, type, content_type, data, metadata,
                                       recorded_at)
                VALUES (event_position, p_id, p_stream, p_category, revision, p_type, p_content, p_data, p_metadata,
                        p_recorded_at);
                PERFORM pg_notify(p_channel, (event_position + 1)::text);
                COMMIT;
            END;
            $$;
            """
        ],
    ]
}
