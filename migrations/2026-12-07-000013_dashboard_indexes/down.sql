DROP INDEX sayiir.tasks_stalled_idx;
DROP INDEX sayiir.tasks_input_not_ready_idx;
DROP INDEX sayiir.tasks_parked_idx;
DROP INDEX sayiir.workflows_instance_bytes_idx;
DROP INDEX sayiir.workflows_status_instance_idx;
