"""indexes on every foreign key and on the columns the retention purge narrows by

An erasure deletes or detaches the rows that point to a client, an account, a staff member
or a data key; without an index on the pointing column each of those checks read the whole
table (PostgreSQL checks a foreign key on delete by scanning the referring table), so one
erasure grew with the number of clients. The purge finds what ended years ago by
bookings.end_at and consents.withdrawn_at.

Revision ID: 6e1a9c4d2b57
Revises: 9c3e5a7f1d24
Create Date: 2026-12-01 18:00:00
"""

from alembic import op

revision = '6e1a9c4d2b57'
down_revision = '9c3e5a7f1d24'
branch_labels = None
depends_on = None

INDEXES = [
    ('ix_account_recoveries_started_by_id', 'account_recoveries', 'started_by_id'),
    ('ix_account_recoveries_data_key_id', 'account_recoveries', 'data_key_id'),
    ('ix_accounts_data_key_id', 'accounts', 'data_key_id'),
    ('ix_bookings_data_key_id', 'bookings', 'data_key_id'),
    ('ix_bookings_service_id', 'bookings', 'service_id'),
    ('ix_bookings_end_at', 'bookings', 'end_at'),
    ('ix_break_glass_grants_staff_member_id', 'break_glass_grants', 'staff_member_id'),
    ('ix_break_glass_grants_reviewed_by_id', 'break_glass_grants', 'reviewed_by_id'),
    ('ix_break_glass_grants_data_key_id', 'break_glass_grants', 'data_key_id'),
    ('ix_clients_data_key_id', 'clients', 'data_key_id'),
    ('ix_consent_requests_requested_by_id', 'consent_requests', 'requested_by_id'),
    ('ix_consent_templates_required_for_service_id', 'consent_templates',
     'required_for_service_id'),
    ('ix_consents_data_key_id', 'consents', 'data_key_id'),
    ('ix_consents_template_id', 'consents', 'template_id'),
    ('ix_consents_signer_account_id', 'consents', 'signer_account_id'),
    ('ix_consents_withdrawn_at', 'consents', 'withdrawn_at'),
    ('ix_correction_requests_data_key_id', 'correction_requests', 'data_key_id'),
    ('ix_correction_requests_handled_by_id', 'correction_requests', 'handled_by_id'),
    ('ix_documents_uploaded_by_id', 'documents', 'uploaded_by_id'),
    ('ix_documents_data_key_id', 'documents', 'data_key_id'),
    ('ix_emergency_contacts_data_key_id', 'emergency_contacts', 'data_key_id'),
    ('ix_notes_corrects_id', 'notes', 'corrects_id'),
    ('ix_notes_author_id', 'notes', 'author_id'),
    ('ix_notes_data_key_id', 'notes', 'data_key_id'),
    ('ix_passkey_credentials_data_key_id', 'passkey_credentials', 'data_key_id'),
    ('ix_slot_holds_service_id', 'slot_holds', 'service_id'),
    ('ix_staff_members_data_key_id', 'staff_members', 'data_key_id'),
    ('ix_staff_services_service_id', 'staff_services', 'service_id'),
]


def upgrade() -> None:
    for name, table, column in INDEXES:
        op.create_index(name, table, [column], unique=False)


def downgrade() -> None:
    for name, table, _column in reversed(INDEXES):
        op.drop_index(name, table_name=table)
