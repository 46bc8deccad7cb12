DROP FUNCTION sayiir.member_outputs(text, bytea[]);
