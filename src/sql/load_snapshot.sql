FROM sayiir.workflows AS w
