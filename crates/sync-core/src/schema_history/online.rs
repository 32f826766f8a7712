//! How a plan follows online schema-change tools ([`crate::osc`]): shadow
//! tables are tracked, not synced; the cut-over, recognised by its shape
//! (a synced `T` moves away and a shadow `S` takes its name, in one
//! statement or two consecutive ones), makes the ALTERs run on `S` into
//! `T`'s own DDL under `[sync.ddl]`.

use super::{Stop, Work};
use crate::ddl::{AlterSpec, Statement, TableDefinition, TableName};
use crate::osc::{Held, Role, Shadow};

impl Work<'_, '_> {
    /// What `stmt` does as part of an online schema change; `None` when it
    /// plays no part in one (the ordinary plan applies).
    pub(super) fn online_ddl(&mut self, stmt: &Statement) -> Option<Result<(), Stop>> {
        // A synced table moved away with a shadow around: the next DDL
        // naming it (or where it went) either completes the cut-over or
        // makes it an ordinary move. DDL of other tables, which other
        // sessions may run in between, leaves it held.
        if let Some(held) = self.next.held.take() {
            if let Some(shadow) = self.completes(stmt, &held) {
                return Some(self.cut_over(&held.table, &shadow));
            }
            if !mentions(stmt, &held.table)
                && !held.to.as_ref().is_some_and(|to| mentions(stmt, to))
            {
                self.next.held = Some(held);
                return self.online_ddl_unheld(stmt);
            }
            if let Err(e) = self.release(&held) {
                return Some(Err(e));
            }
        }
        self.online_ddl_unheld(stmt)
    }

    /// A held move whose database no longer has a shadow to complete it
    /// is the ordinary move it was.
    pub(super) fn release_orphaned_hold(&mut self) -> Result<(), Stop> {
        match self.next.held.take() {
            Some(held) if !self.shadow_in(&held.table.database) => self.release(&held),
            other => {
                self.next.held = other;
                Ok(())
            }
        }
    }

    /// Applies a held move as an ordinary rename or drop.
    fn release(&mut self, held: &Held) -> Result<(), Stop> {
        match &held.to {
            Some(to) => self.rename(&held.table, to),
            None => self.drop(&held.table, "drop table"),
        }
        .map_err(|m| {
            format!(
                "{m} (an earlier statement, held until now as a possible online schema-change \
                 cut-over)"
            )
        })
    }

    /// [`Work::online_ddl`] once any held move is dealt with.
    fn online_ddl_unheld(&mut self, stmt: &Statement) -> Option<Result<(), Stop>> {
        match stmt {
            Statement::CreateTable {
                table, definition, ..
            } => self.shadow_created(table, definition),
            Statement::AlterTable { table, specs } => self.altered(table, specs),
            Statement::RenameTables(pairs) => self.renamed(pairs),
            Statement::DropTables(tables) => self.dropped(tables),
            _ => None,
        }
    }

    /// The key of the shadow table `t`, if one is tracked.
    fn shadow_key(&self, t: &TableName) -> Option<String> {
        let name = t.to_string();
        self.next
            .shadows
            .keys()
            .find(|k| k.eq_ignore_ascii_case(&name))
            .cloned()
    }

    /// Whether a shadow table is tracked in database `db`.
    fn shadow_in(&self, db: &str) -> bool {
        self.next.shadows.keys().any(|k| {
            k.get(..db.len())
                .is_some_and(|d| d.eq_ignore_ascii_case(db))
                && k.get(db.len()..).is_some_and(|rest| rest.starts_with('.'))
        })
    }

    /// The tracked table `t` by its own spelling, if any.
    fn synced_name(&self, t: &TableName) -> Option<TableName> {
        let key = self.next.key_of(t)?;
        let tt = self.next.tables.get(&key)?;
        Some(TableName {
            database: tt.source.database.clone(),
            table: tt.source.table.clone(),
        })
    }

    /// Whether the synced table `t`, alone in its statement, may be held
    /// as moved to `to` (`None`: dropped): with a shadow in its database,
    /// and renamed only to a tool's name, whose rows are never synced (a
    /// table held under any other name could take rows the task missed).
    fn may_hold(&self, t: &TableName, to: Option<&TableName>) -> Option<TableName> {
        if self.next.held.is_some() || !self.shadow_in(&t.database) {
            return None;
        }
        if let Some(to) = to
            && self.cx.naming.osc_role(&to.database, &to.table).is_none()
        {
            return None;
        }
        self.synced_name(t)
    }

    /// The shadow that `stmt` renames to `held`'s name, completing a
    /// two-step cut-over.
    fn completes(&self, stmt: &Statement, held: &Held) -> Option<String> {
        let same = |t: &TableName| t.to_string().eq_ignore_ascii_case(&held.table.to_string());
        match stmt {
            Statement::RenameTables(pairs) => match pairs.as_slice() {
                [(from, to)] if same(to) => self.shadow_key(from),
                _ => None,
            },
            Statement::AlterTable { table, specs } => match specs.as_slice() {
                [AlterSpec::RenameTable(to)] if same(to) => self.shadow_key(table),
                _ => None,
            },
            _ => None,
        }
    }

    /// A shadow table is made: tracked from here on, never synced.
    fn shadow_created(
        &mut self,
        t: &TableName,
        definition: &TableDefinition,
    ) -> Option<Result<(), Stop>> {
        // Only a database with synced tables can hold a cut-over to follow
        // (whatever the include patterns say of the shadow's own name).
        let synced_db = self
            .next
            .tables
            .values()
            .any(|tt| tt.source.database.eq_ignore_ascii_case(&t.database));
        if self.cx.naming.osc_role(&t.database, &t.table) != Some(Role::Shadow)
            || self.next.key_of(t).is_some()
            || !synced_db
        {
            return None;
        }
        let base = match definition {
            TableDefinition::Columns(schema) => Some(schema.clone()),
            TableDefinition::Like(other) => self
                .next
                .key_of(other)
                .and_then(|k| self.next.tables.get(&k))
                .map(|tt| tt.source.clone()),
            TableDefinition::Unknown => None,
        };
        self.next.shadows.insert(
            t.to_string(),
            Shadow {
                base,
                specs: Vec::new(),
                loaded: None,
            },
        );
        Some(Ok(()))
    }

    fn altered(&mut self, t: &TableName, specs: &[AlterSpec]) -> Option<Result<(), Stop>> {
        if let Some(key) = self.shadow_key(t) {
            if specs.iter().any(|s| matches!(s, AlterSpec::RenameTable(_))) {
                // Renamed to anything but a held table's name: no cut-over
                // (that case is `completes`), so no longer a shadow.
                self.next.shadows.remove(&key);
                return None;
            }
            if let Some(shadow) = self.next.shadows.get_mut(&key) {
                shadow.specs.extend(specs.iter().cloned());
            }
            return Some(Ok(()));
        }
        if let [AlterSpec::RenameTable(to)] = specs
            && let Some(table) = self.may_hold(t, Some(to))
        {
            self.next.held = Some(Held {
                table,
                to: Some(to.clone()),
            });
            return Some(Ok(()));
        }
        None
    }

    /// `RENAME TABLE`: a synced `T` moved away and a shadow moved to `T`
    /// in the same statement is the cut-over.
    fn renamed(&mut self, pairs: &[(TableName, TableName)]) -> Option<Result<(), Stop>> {
        let involves_shadow = pairs
            .iter()
            .any(|(from, _)| self.shadow_key(from).is_some());
        if !involves_shadow {
            return match pairs {
                [(from, to)] => {
                    let table = self.may_hold(from, Some(to))?;
                    self.next.held = Some(Held {
                        table,
                        to: Some(to.clone()),
                    });
                    Some(Ok(()))
                }
                _ => None,
            };
        }
        let mut consumed = vec![false; pairs.len()];
        for (i, (from, to)) in pairs.iter().enumerate() {
            if consumed[i] {
                continue;
            }
            if let Some(table) = self.synced_name(from) {
                let swap = (i + 1..pairs.len()).find(|&j| {
                    !consumed[j]
                        && pairs[j]
                            .1
                            .to_string()
                            .eq_ignore_ascii_case(&from.to_string())
                        && self.shadow_key(&pairs[j].0).is_some()
                });
                if let Some(j) = swap {
                    consumed[j] = true;
                    let shadow = self.shadow_key(&pairs[j].0).unwrap_or_default();
                    if let Err(e) = self.cut_over(&table, &shadow) {
                        return Some(Err(e));
                    }
                    // The old table under a name of the user's own is a
                    // table that appears, like any renamed into the patterns.
                    if self.cx.naming.osc_role(&to.database, &to.table).is_none()
                        && let Err(e) = self.appeared(
                            to,
                            &format!("table {to} appears ({from} renamed at a cut-over)"),
                            None,
                        )
                    {
                        return Some(Err(e));
                    }
                    continue;
                }
            }
            if let Some(key) = self.shadow_key(from) {
                self.next.shadows.remove(&key);
            }
            if let Err(e) = self.rename(from, to) {
                return Some(Err(e));
            }
        }
        Some(Ok(()))
    }

    /// `DROP TABLE`: a shadow dropped ends its change (an abort, or the
    /// clean-up after one); a synced table dropped alone with a shadow in
    /// its database is held (pt-osc's `drop_swap` renames the shadow next).
    fn dropped(&mut self, tables: &[TableName]) -> Option<Result<(), Stop>> {
        if let [t] = tables
            && let Some(table) = self.may_hold(t, None)
        {
            self.next.held = Some(Held { table, to: None });
            return Some(Ok(()));
        }
        let (shadows, rest): (Vec<&TableName>, Vec<&TableName>) =
            tables.iter().partition(|t| self.shadow_key(t).is_some());
        if shadows.is_empty() {
            return None;
        }
        for t in shadows {
            if let Some(key) = self.shadow_key(t) {
                self.next.shadows.remove(&key);
            }
        }
        Some(
            rest.into_iter()
                .try_for_each(|t| self.drop(t, "drop table")),
        )
    }

    /// The cut-over: `shadow` replaces the synced `t`. `t` keeps its
    /// destination tables and record_ids; the ALTERs run on the shadow
    /// become `t`'s DDL, under the DDL policy.
    fn cut_over(&mut self, t: &TableName, shadow: &str) -> Result<(), Stop> {
        let what = format!("online schema change: {shadow} replaces {t} (cut-over)");
        let Some(state) = self.next.shadows.remove(shadow) else {
            return Err(Self::cannot(&what, "the shadow table is not tracked"));
        };
        let Some(tt) = self.next.key_of(t).and_then(|k| self.next.tables.get(&k)) else {
            return Err(Self::cannot(&what, "the table is not tracked"));
        };
        if let Some(base) = &state.base {
            let names = |cols: &[mysql_source::schema::ColumnSchema]| {
                cols.iter()
                    .map(|c| c.name.to_ascii_lowercase())
                    .collect::<Vec<_>>()
            };
            let (made, now) = (names(&base.columns), names(&tt.source.columns));
            if made != now {
                return Err(Self::cannot(
                    &what,
                    &format!(
                        "{shadow} was created with the columns ({}) but {t} has ({}), so its \
                         ALTER statements do not say what changed; resync {t}",
                        made.join(", "),
                        now.join(", ")
                    ),
                ));
            }
        }
        // A shadow found already made when the phase began: its columns
        // then (which include its ALTERs) against the table's.
        let specs: Vec<AlterSpec> = match &state.loaded {
            Some(loaded) => crate::osc::column_diff(&tt.source, loaded),
            None => state
                .specs
                .into_iter()
                .filter(|s| !matches!(s, AlterSpec::RenameTable(_)))
                .collect(),
        };
        self.alter(t, &specs)
            .map_err(|m| format!("{what}: the ALTER run on {shadow}: {m}"))?;
        self.notes.push(format!(
            "{what}: the ALTER run on {shadow} is followed as {t}'s own DDL; {t} keeps its \
             destination tables"
        ));
        Ok(())
    }
}

/// Whether `stmt` names the table `t` (or drops its database).
fn mentions(stmt: &Statement, t: &TableName) -> bool {
    let is = |n: &TableName| n.to_string().eq_ignore_ascii_case(&t.to_string());
    match stmt {
        Statement::AlterTable { table, specs } => {
            is(table)
                || specs
                    .iter()
                    .any(|s| matches!(s, AlterSpec::RenameTable(to) if is(to)))
        }
        Statement::RenameTables(pairs) => pairs.iter().any(|(a, b)| is(a) || is(b)),
        Statement::DropTables(tables) => tables.iter().any(is),
        Statement::Truncate(table)
        | Statement::CreateIndex { table, .. }
        | Statement::DropIndex { table, .. } => is(table),
        Statement::CreateTable {
            table, definition, ..
        } => is(table) || matches!(definition, TableDefinition::Like(other) if is(other)),
        Statement::DropDatabase(db) => db.eq_ignore_ascii_case(&t.database),
    }
}
