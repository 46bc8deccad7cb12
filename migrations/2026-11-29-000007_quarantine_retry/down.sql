DROP INDEX sayiir.tasks_quarantined_idx;
