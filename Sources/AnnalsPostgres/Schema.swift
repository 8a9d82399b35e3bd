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
    ]
}
