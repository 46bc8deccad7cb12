DROP INDEX sayiir.tasks_runnable_idx;
